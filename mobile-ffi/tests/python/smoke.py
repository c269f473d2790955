"""The director's day through the Python bindings against a real server, checked by the
township supervisor through the server's HTTP API. Standard library only, like the bindings.

Usage: PYTHONPATH=OUT_DIR/python python3 smoke.py SERVER_URL CA_PEM_FILE DIRECTOR PASSWORD SUPERVISOR PASSWORD
"""

import datetime
import json
import os
import ssl
import struct
import sys
import tempfile
import urllib.request
import uuid
import zlib

from homevisit import Findings, HomevisitError, NewChild, Phone

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   python smoke: {name}")
    else:
        failed += 1
        print(f"FAIL python smoke: {name} {detail}")


def png(width=640, height=480):
    """A camera-like photo, encoded by hand: the standard library has no image encoder."""
    rows = b"".join(
        b"\x00" + bytes((x % 200, y % 200, 90)[c] for x in range(width) for c in range(3))
        for y in range(height)
    )

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class Api:
    """The server's HTTP API, as the supervisor's console calls it."""

    def __init__(self, base, ca_file):
        self.base = base
        self.tls = ssl.create_default_context(cafile=ca_file)
        self.token = None

    def call(self, method, path, body=None):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, context=self.tls) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def login(self, user, password):
        status, body = self.call("POST", "/api/v1/auth/login", {
            "username": user, "password": password,
            "device_id": str(uuid.uuid4()), "device_name": "console"})
        assert status == 200, body
        self.token = json.loads(body)["access_token"]


def main():
    url, ca_file, director, password, supervisor, supervisor_password = sys.argv[1:7]
    with open(ca_file) as f:
        ca = f.read()
    today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).date().isoformat()
    state = tempfile.mkdtemp(prefix="hv-python-")
    key = os.urandom(32)

    phone = Phone.open(state, key)
    try:
        Phone.open(state, os.urandom(32))
        check("a wrong key is refused", False, "it opened")
    except HomevisitError.WrongKey as e:
        check("a wrong key is refused", "key" in str(e), str(e))

    account = phone.login(url, ca, director, password, "python smoke")
    check("the director logs in", account.role == "director")
    first = phone.sync()
    check("the first sync lists the village, then brings it in pages",
          first.files_received > 0 and first.pages >= 1 and first.round_trips == first.pages + 1
          and phone.status().arriving == 0, str(first))
    check("the due list answers offline", any(d.status == "overdue" for d in phone.due(today)))

    child = phone.add_child(NewChild(name="蟒小蛇", sex="male", birth_date="2015-09-09", id_number=None,
                                     village_code=account.scope[0], address="二组", hukou_place=""))
    visit = phone.record_home_visit(child, today, Findings(living_security="", family_guardianship="父母外出务工",
                                                           medical_schooling="", care_activities=""),
                                    "python 入户", [png()])
    phone.report_danger(child, today, ["domestic_violence"], "疑似家暴", ["police", "supervisor"])
    photo = next(r for r in phone.child(child).records if r.id == visit).photos[0]
    try:
        phone.record_home_visit(child, today, Findings(living_security="", family_guardianship="",
                                                       medical_schooling="", care_activities=""),
                                "", [b"\x89PNG\r\n\x1a\nbroken"])
        check("a corrupt image is refused", False, "it was recorded")
    except HomevisitError.Photo as e:
        check("a corrupt image is refused", e.index == 0, str(e))

    benefit = phone.add_part(child, "benefits",
                             '{"kind":"dibao","status":"granted","granted_on":"%s","amount_fen":60000}' % today)
    check("a benefit is recorded", benefit in phone.child(child).parts_json)
    try:
        phone.add_part(child, "referrals", '{"on":"%s","status":"made"}' % today)
        check("a referral with no target is refused", False, "it was recorded")
    except HomevisitError.Invalid as e:
        check("a referral with no target is refused", "referrals/to" in str(e), str(e))

    report = phone.sync()
    check("the photo and the file go up", report.photos_uploaded == 1 and report.files_sent >= 1, str(report))

    api = Api(url, ca_file)
    api.login(supervisor, supervisor_password)
    status, body = api.call("GET", f"/api/v1/children/{child}")
    text = body.decode()
    check("the supervisor reads the file", status == 200 and "蟒小蛇" in text and "父母外出务工" in text, text[:200])
    check("the danger arrived", "domestic_violence" in text, text[:200])
    check("the benefit arrived", benefit in text and '"dibao"' in text, text[:200])
    status, jpeg = api.call("GET", f"/api/v1/blobs/{photo}")
    check("the photo arrived as a JPEG", status == 200 and jpeg[:2] == b"\xff\xd8", str(status))
    status, alerts = api.call("GET", "/api/v1/alerts?status=open&kind=danger")
    check("the danger raised an alert", status == 200 and child in alerts.decode())

    phone.wipe()
    try:
        phone.children()
        check("a wiped phone refuses", False)
    except HomevisitError.Wiped:
        check("a wiped phone refuses", True)

    print(f"python smoke: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and passed > 0 else 1)


main()
