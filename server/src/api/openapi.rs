//! `GET /api/v1/openapi.json`: every endpoint, its parameters, bodies, answers and error codes.

use actix_web::{HttpResponse, get};
use serde_json::{Value, json};

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn id_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": {"type": "string"}})
}

fn query(name: &str, description: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "schema": {"type": kind}})
}

/// The document.
pub fn document() -> Value {
    let bearer = json!([{"bearer": []}]);
    let unauthorized = error(
        "missing_token, invalid_token (forged, expired, wrong audience, unknown kid) or device_revoked",
    );
    let forbidden = error("role_forbidden or region_forbidden");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "homevisit",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Home visits to children in difficulty: phones sync child files; supervisors read. Errors are JSON {code, message} with a stable code."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA, with kid)"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"],
                          "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
                "Tokens": {"type": "object", "properties": {
                    "access_token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer"]},
                    "expires_in": {"type": "integer"}, "refresh_token": {"type": "string"},
                    "refresh_expires_at": {"type": "integer"}, "user_id": {"type": "string"},
                    "role": {"type": "string", "enum": ["director", "supervisor", "county", "admin"]},
                    "device_id": {"type": "string", "format": "uuid"}}},
                "Refresh": {"type": "object", "required": ["refresh_token"],
                            "properties": {"refresh_token": {"type": "string"}}},
                "ChildRow": {"type": "object", "properties": {
                    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
                    "village": {"type": "string"}, "categories": {"type": "array", "items": {"type": "string"}},
                    "status": {"type": "string", "enum": ["ok", "due_soon", "overdue", "not_served"]},
                    "schedules": {"type": "array", "items": {"type": "object"}},
                    "last_home_visit": {"type": "string", "format": "date", "nullable": true},
                    "danger_open": {"type": "boolean"}}}
            }
        },
        "paths": {
            "/healthz": {"get": {"summary": "The process is up", "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "The database answers", "responses": {
                "200": {"description": "ready"}, "503": error("unavailable")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (no personal data; keep it on the internal network)",
                "responses": {"200": {"description": "text exposition"}}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/api/v1/auth/login": {"post": {
                "summary": "Log in on a device: an access token (15 min) and a refresh token bound to the device",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["username", "password", "device_id", "device_name"],
                    "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                                   "device_id": {"type": "string", "format": "uuid"}, "device_name": {"type": "string"}}}}}},
                "responses": {
                    "200": ok_json("logged in", json!({"$ref": "#/components/schemas/Tokens"})),
                    "400": error("invalid_json or invalid_request"),
                    "401": error("invalid_credentials, device_revoked"),
                    "403": error("account_locked, account_disabled"),
                    "409": error("device_taken"),
                    "413": error("payload_too_large"),
                    "429": error("too_many_attempts (Retry-After)")}}},
            "/api/v1/auth/refresh": {"post": {
                "summary": "Spend a refresh token for a new pair; reusing a spent one revokes the whole login (one retry right after a lost response is allowed)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refresh"}}}},
                "responses": {
                    "200": ok_json("rotated", json!({"$ref": "#/components/schemas/Tokens"})),
                    "401": error("invalid_refresh_token, refresh_token_reused, device_revoked (wipe local data)"),
                    "403": error("account_disabled")}}},
            "/api/v1/auth/logout": {"post": {
                "summary": "End the login a refresh token belongs to",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refresh"}}}},
                "responses": {"204": {"description": "logged out"}}}},
            "/api/v1/sync": {"post": {
                "summary": "One sync round trip (docs/PROTOCOL.md); all of the request is committed or none",
                "security": bearer,
                "requestBody": {"required": true, "content": {"application/vnd.homevisit.sync": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {
                    "200": {"description": "the response frame", "content": {"application/vnd.homevisit.sync": {"schema": {"type": "string", "format": "binary"}}}},
                    "400": error("corrupt_request, corrupt_document, invalid_document (names the file)"),
                    "401": unauthorized,
                    "403": error("role_forbidden, region_forbidden, moves_out_of_scope (names the file)"),
                    "413": error("payload_too_large")}}},
            "/api/v1/children": {"get": {
                "summary": "Children of the caller's regions with today's schedules (audited)",
                "security": bearer,
                "parameters": [query("village", "one village code", "string"), query("category", "a category key", "string"),
                               query("status", "ok, due_soon, overdue or not_served", "string"),
                               query("limit", "at most 1000, default 200", "integer"), query("offset", "skip", "integer")],
                "responses": {
                    "200": ok_json("the list", json!({"type": "object", "properties": {
                        "total": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/components/schemas/ChildRow"}}}})),
                    "400": error("invalid_query"), "401": unauthorized, "403": forbidden}}},
            "/api/v1/children/{id}": {"get": {
                "summary": "One child's file as JSON (audited)", "security": bearer,
                "parameters": [id_param("id", "the file id")],
                "responses": {"200": ok_json("the file", json!({"type": "object"})),
                              "401": unauthorized, "403": forbidden, "404": error("not_found")}}},
            "/api/v1/children/{id}/history": {"get": {
                "summary": "Who changed what in a file, and when (audited)", "security": bearer,
                "parameters": [id_param("id", "the file id")],
                "responses": {"200": ok_json("changes, oldest first", json!({"type": "object", "properties": {"changes": {"type": "array", "items": {
                    "type": "object", "properties": {"hash": {"type": "string"}, "at": {"type": "integer"},
                    "by": {"type": "string"}, "touched": {"type": "array", "items": {"type": "string"}}}}}}})),
                              "401": unauthorized, "403": forbidden, "404": error("not_found")}}},
            "/api/v1/audit": {"get": {
                "summary": "Reads of child files (county: their regions; admin: all)", "security": bearer,
                "parameters": [query("child", "a file id", "string"), query("user", "a username", "string"),
                               query("after", "rows after this id", "integer"), query("limit", "at most 1000", "integer")],
                "responses": {"200": ok_json("entries, oldest first", json!({"type": "object"})),
                              "401": unauthorized, "403": forbidden}}},
            "/api/v1/devices": {"get": {
                "summary": "Registered devices (admin)", "security": bearer,
                "responses": {"200": ok_json("devices", json!({"type": "object"})), "401": unauthorized, "403": forbidden}}},
            "/api/v1/devices/{id}/revoke": {"post": {
                "summary": "Revoke a device (admin): its tokens die and its next sync orders a wipe", "security": bearer,
                "parameters": [id_param("id", "the device id")],
                "responses": {"204": {"description": "revoked"}, "401": unauthorized, "403": forbidden, "404": error("not_found")}}},
            "/api/v1/blobs/{sha256}": {
                "put": {
                    "summary": "Upload a photo, whole or in pieces (Content-Range: bytes START-END/TOTAL); idempotent",
                    "security": bearer,
                    "parameters": [id_param("sha256", "the photo's SHA-256, lowercase hex")],
                    "requestBody": {"required": true, "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                    "responses": {"200": {"description": "already stored"}, "201": {"description": "stored"},
                                  "202": {"description": "piece kept; Upload-Offset says how much"},
                                  "400": error("invalid_photo, invalid_blob_name, invalid_content_range"),
                                  "401": unauthorized, "403": forbidden,
                                  "409": error("upload_offset_mismatch (resume at offset)"), "413": error("payload_too_large")}},
                "get": {
                    "summary": "A photo, to those who may see a file that refers to it (audited)", "security": bearer,
                    "parameters": [id_param("sha256", "the photo's SHA-256")],
                    "responses": {"200": {"description": "the image", "content": {"image/jpeg": {}, "image/png": {}}},
                                  "401": unauthorized, "403": forbidden, "404": error("not_found")}}},
            "/api/v1/blobs/{sha256}/status": {"get": {
                "summary": "How much of an upload the server holds", "security": bearer,
                "parameters": [id_param("sha256", "the photo's SHA-256")],
                "responses": {"200": ok_json("status", json!({"type": "object", "properties": {
                    "stored": {"type": "boolean"}, "offset": {"type": "integer"}}})), "401": unauthorized, "403": forbidden}}}
        }
    })
}

/// Serves the document.
#[get("/api/v1/openapi.json")]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
