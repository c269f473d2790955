//! `GET /api/v1/openapi.json`, generated rather than written: each handler describes itself
//! (`#[utoipa::path]`, beside its code, with the request and answer types it really uses), and
//! the document is collected from the services the server registers (utoipa-actix-web), so a
//! route and its description cannot drift apart. The same document tells the catch-all handler
//! which paths exist, so a described path asked with another method is 405, not 404.

use actix_web::{HttpResponse, get, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::api::error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "homevisit",
        description = "Home visits to children in difficulty: phones sync child files; \
                       supervisors and counties read. Errors are JSON {code, message} with a \
                       stable code. Every read of a child file is audited."
    ),
    modifiers(&Security),
    components(schemas(crate::api::error::Body))
)]
struct Base;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api
            .components
            .get_or_insert_with(utoipa::openapi::Components::new);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(
                        "opaque: a session and an expiry under HMAC-SHA256, 50 characters",
                    )
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Raw bytes in a body (a sync frame, a photo), for the document.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for Binary {}

/// The document, as the server's routes describe themselves.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(Base::openapi())
        .configure(super::routes)
        .split_for_parts();
    api
}

/// The document as served, and the paths it describes with their methods.
pub struct ApiDocument {
    json: String,
    paths: Vec<(Vec<Segment>, Vec<&'static str>)>,
}

/// One segment of a described path: literal, or a `{parameter}` matching any one segment.
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter,
}

impl ApiDocument {
    /// Serialises the document once and indexes its paths.
    pub fn new(api: &utoipa::openapi::OpenApi) -> Self {
        let json = api.to_json().unwrap_or_default();
        let paths = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Parameter
                        } else {
                            Segment::Literal(s.to_owned())
                        }
                    })
                    .collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("HEAD", item.head.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (segments, methods)
            })
            .collect();
        ApiDocument { json, paths }
    }

    /// The methods a described path takes, if `path` is one.
    pub fn methods_of(&self, path: &str) -> Option<&[&'static str]> {
        let asked: Vec<&str> = path.split('/').collect();
        self.paths
            .iter()
            .find(|(segments, _)| {
                segments.len() == asked.len()
                    && segments.iter().zip(&asked).all(|(s, a)| match s {
                        Segment::Literal(l) => l == a,
                        Segment::Parameter => !a.is_empty(),
                    })
            })
            .map(|(_, methods)| methods.as_slice())
    }
}

/// The answer for routes that do not exist: 405 with `Allow` for a described path asked with
/// another method, 404 otherwise.
pub async fn not_found(
    req: actix_web::HttpRequest,
    doc: web::Data<ApiDocument>,
) -> Result<HttpResponse, ApiError> {
    use actix_web::ResponseError;
    use actix_web::http::{StatusCode, header};
    let Some(allowed) = doc.methods_of(req.path()) else {
        return Err(ApiError::NotFound);
    };
    let allow = allowed.join(", ");
    let mut response = ApiError::Refused {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: format!("this path takes {allow}"),
        files: Vec::new(),
    }
    .error_response();
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(response)
}

/// This document.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object))
)]
#[get("/api/v1/openapi.json")]
pub async fn document_json(doc: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.json.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_device_name_pattern_is_the_one_the_server_checks() {
        let doc = serde_json::to_value(document()).expect("json");
        let pattern =
            &doc["components"]["schemas"]["LoginRequest"]["properties"]["device_name"]["pattern"];
        assert_eq!(pattern, crate::service::auth::DEVICE_NAME_PATTERN);
    }

    #[test]
    fn the_documented_school_statuses_and_guardianship_levels_are_the_vocabulary_the_server_checks()
    {
        use homevisit_sync_core::vocab::{Guardianship, SchoolStatus};
        let doc = serde_json::to_value(document()).expect("json");
        let params = doc["paths"]["/api/v1/children"]["get"]["parameters"]
            .as_array()
            .expect("parameters");
        let levels = Guardianship::ALL
            .iter()
            .map(|k| k.key())
            .chain([crate::service::schedules::UNASSESSED]);
        let schools = SchoolStatus::ALL.iter().map(|k| k.key());
        for (name, keys) in [
            ("school_status", schools.collect::<Vec<_>>()),
            ("guardianship", levels.collect()),
        ] {
            let param = params
                .iter()
                .find(|p| p["name"] == name)
                .expect("documented");
            let schema = param["schema"].to_string();
            let documented: Vec<&str> = schema.split('"').filter(|s| keys.contains(s)).collect();
            assert_eq!(documented, keys, "{name}: {}", param["schema"]);
        }
    }

    #[test]
    fn described_paths_are_found_with_their_methods_and_others_are_not() {
        let doc = ApiDocument::new(&document());
        assert_eq!(
            doc.methods_of("/api/v1/blobs/0123"),
            Some(&["GET", "PUT"][..])
        );
        assert_eq!(doc.methods_of("/api/v1/sync"), Some(&["POST"][..]));
        assert_eq!(doc.methods_of("/api/v1/children//history"), None);
        assert_eq!(doc.methods_of("/api/v1/nothing"), None);
    }
}
