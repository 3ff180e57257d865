//! `GET /api/v1/yang` and `GET /api/v1/yang/{module}`: the YANG modules whose data Pharos speaks
//! (vendored in the repository's `yang/`, embedded in the binary), so a client can validate what
//! it receives or pushes against the exact schema, without fetching it elsewhere.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorBody};

/// `(name, revision, text)` of every served module.
pub const MODULES: &[(&str, &str, &str)] = &[
    (
        "ietf-i2nsf-monitoring-interface",
        "2022-06-01",
        include_str!("../../../yang/ietf-i2nsf-monitoring-interface@2022-06-01.yang"),
    ),
    (
        "ietf-i2nsf-nsf-facing-interface",
        "2022-06-01",
        include_str!("../../../yang/ietf-i2nsf-nsf-facing-interface@2022-06-01.yang"),
    ),
    (
        "pharos-i2nsf-extensions",
        "2026-11-24",
        include_str!("../../../yang/pharos-i2nsf-extensions@2026-11-24.yang"),
    ),
    (
        "ietf-inet-types",
        "2013-07-15",
        include_str!("../../../yang/ietf-inet-types@2013-07-15.yang"),
    ),
    (
        "ietf-yang-types",
        "2013-07-15",
        include_str!("../../../yang/ietf-yang-types@2013-07-15.yang"),
    ),
    (
        "ietf-interfaces",
        "2018-02-20",
        include_str!("../../../yang/ietf-interfaces@2018-02-20.yang"),
    ),
    (
        "ietf-packet-fields",
        "2019-03-04",
        include_str!("../../../yang/ietf-packet-fields@2019-03-04.yang"),
    ),
    (
        "ietf-ethertypes",
        "2019-03-04",
        include_str!("../../../yang/ietf-ethertypes@2019-03-04.yang"),
    ),
];

/// One served module.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct YangModule {
    /// Module name.
    name: &'static str,
    /// Its revision (date).
    revision: &'static str,
    /// Where its text is served.
    path: String,
}

/// The served modules.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct YangModules {
    /// One per module.
    items: Vec<YangModule>,
}

/// `GET /api/v1/yang`: the YANG modules whose data Pharos speaks (name, revision, path).
#[utoipa::path(get, path = "/api/v1/yang", tag = "server",
    summary = "The YANG modules whose data Pharos speaks (name, revision, path)",
    responses((status = 200, description = "The served modules", body = YangModules)))]
pub(crate) async fn list() -> axum::Json<YangModules> {
    let items = MODULES
        .iter()
        .map(|(name, revision, _)| YangModule {
            name,
            revision,
            path: format!("/api/v1/yang/{name}"),
        })
        .collect();
    axum::Json(YangModules { items })
}

/// `GET /api/v1/yang/{module}`: the module's text (`application/yang`, RFC 6020); the name may
/// carry its revision (`name@revision`, `.yang` optional).
#[utoipa::path(get, path = "/api/v1/yang/{module}", tag = "server",
    summary = "A YANG module's text (application/yang), by name or name@revision",
    params(("module" = String, Path, description = "Module name, optionally @revision (`.yang` optional)")),
    responses(
        (status = 200, description = "The module", body = String, content_type = "application/yang"),
        (status = 404, description = "No such module", body = ErrorBody),
    ))]
pub(crate) async fn get_one(Path(module): Path<String>) -> Result<Response, ApiError> {
    let wanted = module.strip_suffix(".yang").unwrap_or(&module);
    let (name, rev) = match wanted.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (wanted, None),
    };
    let found = MODULES
        .iter()
        .find(|(n, r, _)| *n == name && rev.is_none_or(|x| x == *r));
    match found {
        Some((_, _, text)) => {
            Ok(([(header::CONTENT_TYPE, "application/yang")], *text).into_response())
        }
        None => Err(ApiError::not_found(format!(
            "no YANG module {:?}; GET /api/v1/yang lists the served modules",
            pharos_model::text::printable(&module)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_is_the_vendored_file_and_names_itself() {
        for (name, rev, text) in MODULES {
            assert!(
                text.contains(&format!("module {name} {{")),
                "{name} does not declare itself"
            );
            assert!(
                text.contains(&format!("revision {rev}"))
                    || text.contains(&format!("revision \"{rev}\"")),
                "{name}@{rev}"
            );
        }
    }

    #[tokio::test]
    async fn modules_are_found_by_name_with_or_without_revision() {
        for q in [
            "ietf-i2nsf-monitoring-interface",
            "ietf-i2nsf-monitoring-interface@2022-06-01",
            "ietf-i2nsf-monitoring-interface@2022-06-01.yang",
        ] {
            let r = get_one(Path(q.to_string())).await.unwrap();
            assert_eq!(r.headers()[header::CONTENT_TYPE], "application/yang");
        }
        assert!(
            get_one(Path("ietf-i2nsf-monitoring-interface@1999-01-01".into()))
                .await
                .is_err()
        );
        assert!(get_one(Path("nope".into())).await.is_err());
    }
}
