// A director's day through the SDK against a real `homevisit serve`, then the township
// supervisor checks through the server's HTTP API that all of it arrived.
// Usage: EndToEndSuiteKt builtin|java SERVER_URL CA_PEM_FILE DIRECTOR PASSWORD SUPERVISOR PASSWORD
//   builtin: the SDK's own HTTPS (rustls); java: an HttpTransport on java.net.http.
package homevisit.tests

import java.io.File
import kotlinx.coroutines.runBlocking
import uniffi.homevisit.*

fun main(args: Array<String>) {
    val (mode, url, caFile, director, password) = args
    val (supervisor, supervisorPassword) = args.drop(5)
    val ca = File(caFile).readText()
    val t = Checks("kotlin e2e ($mode)")
    val today = todayInChina()
    val transport = JavaHttpTransport(ca)
    val open = { dir: String ->
        if (mode == "java") Phone.openWithTransport(dir, randomKey(), transport) else Phone.open(dir, randomKey())
    }

    val name = "柯小林" + mode
    var childId = ""
    var photo = ""
    val directorDir = tempDir("hv-director")
    open(directorDir).use { phone ->
        val account = phone.login(url, ca, director, password, "kotlin e2e $mode")
        t.check("the director logs in", account.role == "director" && account.username == director)
        val first = phone.sync()
        t.check("the first sync brings the village's files", first.filesReceived > 0u && phone.status().files == first.filesReceived) { "$first" }
        t.check("the first sync lists the village, then brings the files in pages", first.pages >= 1u && first.roundTrips == first.pages + 1u && phone.status().arriving == 0u) { "$first" }
        val due = phone.due(today)
        t.check("the due list shows children behind on visits", due.any { it.status == "overdue" && it.name.isNotEmpty() }) { "${due.size}" }

        // Offline from here until the next sync.
        childId = phone.addChild(NewChild(name, "female", "2017-05-04", null, account.scope.first(), "三组", "铁东区"))
        val visit = phone.recordHomeVisit(childId, today,
            Findings("低保已落实", "祖父母监护", "按时上学", "参加儿童之家活动"), "家中整洁", listOf(cameraPhoto()))
        phone.reportDanger(childId, today, listOf("living_alone"), "独自在家", listOf("supervisor"))
        val detail = phone.child(childId)
        photo = detail.records.first { it.id == visit }.photos.single()
        t.check("the file holds the visit and the danger", detail.records.map { it.kind }.sorted() == listOf("danger", "home_visit")) { "$detail" }
        t.check("the photo waits in the outbox", phone.status().photosWaiting == 1u)
        val clear = inClear(directorDir, listOf(name, "家中整洁", "独自在家"))
        t.check("nothing personal and no JPEG is in clear on the phone's disk", clear.isEmpty()) { "$clear" }

        val report = if (mode == "java") runBlocking { phone.syncAsync() } else phone.sync()
        t.check("the sync sends the photo first, then the file", report.photosUploaded == 1u && report.filesSent >= 1u && !report.wiped) { "$report" }
        t.check("nothing waits after the sync", phone.status().photosWaiting == 0u && phone.status().files == first.filesReceived + 1u)
        if (mode == "java") t.check("every request went through the app's transport", transport.requests > 3) { "${transport.requests}" }
    }

    val api = Api(url, ca)
    api.login(supervisor, supervisorPassword)
    val (status, file) = api.getText("/api/v1/children/$childId")
    t.check("the supervisor reads the new file", status == 200 && file.contains(name)) { "$status $file" }
    t.check("the file holds the visit's findings and the danger", file.contains("祖父母监护") && file.contains("living_alone")) { file }
    val (photoStatus, jpeg) = api.get("/api/v1/blobs/$photo")
    t.check("the photo arrived as a JPEG",
        photoStatus == 200 && jpeg.size > 100 && jpeg[0] == 0xFF.toByte() && jpeg[1] == 0xD8.toByte()) { "$photoStatus" }
    val (alertsStatus, alerts) = api.getText("/api/v1/alerts?status=open&kind=danger")
    t.check("the danger raised an alert to the supervisor", alertsStatus == 200 && alerts.contains(childId)) { alerts }

    // The supervisor's own phone gets the alert through sync and acknowledges it offline.
    open(tempDir("hv-supervisor")).use { phone ->
        phone.login(url, ca, supervisor, supervisorPassword, "kotlin e2e $mode supervisor")
        phone.sync()
        val alert = phone.alerts().firstOrNull { it.childId == childId && it.kind == "danger" }
        t.check("the supervisor's phone holds the danger alert", alert != null) { "${phone.alerts()}" }
        if (alert != null) {
            phone.acknowledgeAlert(alert.id, "已电话核实，已联系派出所")
            t.check("the acknowledgement waits for the sync", phone.status().acksWaiting == 1u)
            phone.sync()
            t.check("the acknowledgement is sent", phone.status().acksWaiting == 0u)
            val (_, acked) = api.getText("/api/v1/alerts?status=acknowledged&kind=danger")
            t.check("the server holds the acknowledgement", acked.contains(alert.id)) { acked }
        }
        t.check("the supervisor can log out", phone.logout())
        t.throws<HomevisitException.NotLoggedIn>("after logout the phone syncs no more") { phone.sync() }
    }
    t.finish()
}
