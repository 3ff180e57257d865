//! The constituency registry (docs/constituency.md): `GET /api/v1/constituency/organisations`,
//! `GET /api/v1/constituency/lookup?q=`, `POST /api/v1/constituency/organisations` (manual
//! override) and `DELETE /api/v1/constituency/organisations/{id}` (manual organisations).
//!
//! Contract: reads need the viewer role, writes the admin role (checked here: the route rule
//! gives analysts every non-GET route). Writes go to the manual layer only, which survives
//! imports. The routes answer 503 when the router carries no [`ConstituencyHandle`].

use std::path::PathBuf;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use pharos_constituency::{Organisation, Registry};

use crate::ApiError;
use crate::auth::{Principal, Role};
use crate::error::ErrorBody;
use crate::json::Json;

/// Where the registry and the delivery table are (the router carries it as an `Extension`).
#[derive(Clone, Debug)]
pub struct ConstituencyHandle {
    /// The registry database (`[constituency] db`).
    pub registry: PathBuf,
    /// The notice stage's delivery table (`notices.db`), when the stage runs.
    pub notices: Option<PathBuf>,
}

pub(crate) fn handle(
    h: Option<Extension<ConstituencyHandle>>,
) -> Result<ConstituencyHandle, ApiError> {
    h.map(|Extension(h)| h).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the constituency registry is not available in this server",
        )
    })
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("constituency task failed", e))?
}

fn registry_error(e: pharos_constituency::Error) -> ApiError {
    match e {
        pharos_constituency::Error::Invalid { .. } | pharos_constituency::Error::Input { .. } => {
            ApiError::bad_request(e.to_string())
        }
        e => ApiError::internal("constituency registry failed", e),
    }
}

fn open(h: &ConstituencyHandle) -> Result<Registry, ApiError> {
    Registry::open(&h.registry).map_err(registry_error)
}

fn default_role() -> String {
    "abuse".into()
}
fn default_interval() -> String {
    "daily".into()
}
fn default_severity() -> String {
    "low".into()
}
fn default_language() -> String {
    "en".into()
}
fn yes() -> bool {
    true
}
fn manual() -> String {
    "manual".into()
}

/// One suppression rule.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressionView {
    /// `kind`, `source` (a source prefix) or `address` (a touched prefix).
    pub by: String,
    /// The kind name or the prefix.
    pub value: String,
}

/// A contact's notification policy.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyView {
    /// `immediate`, `hourly` or `daily`.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Event kinds wanted (empty: all).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// RSIT taxonomies or `taxonomy/type` wanted (empty: all).
    #[serde(default)]
    pub taxonomies: Vec<String>,
    /// `info`, `low`, `middle`, `high` or `critical`.
    #[serde(default = "default_severity")]
    pub min_severity: String,
    /// Suppression rules.
    #[serde(default)]
    pub suppress: Vec<SuppressionView>,
    /// BCP 47 language tag.
    #[serde(default = "default_language")]
    pub language: String,
    /// Whether other parties' addresses are pseudonymised.
    #[serde(default = "yes")]
    pub anonymise: bool,
}

impl Default for PolicyView {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            kinds: Vec::new(),
            taxonomies: Vec::new(),
            min_severity: default_severity(),
            suppress: Vec::new(),
            language: default_language(),
            anonymise: true,
        }
    }
}

/// A contact: mail and/or webhook, and its policy.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactView {
    /// Person or team name.
    #[serde(default)]
    pub name: String,
    /// `abuse` unless said otherwise.
    #[serde(default = "default_role")]
    pub role: String,
    /// Mail address.
    #[serde(default)]
    pub mail: Option<String>,
    /// Webhook URL.
    #[serde(default)]
    pub webhook: Option<String>,
    /// What it wants.
    #[serde(default)]
    pub policy: PolicyView,
}

/// An organisation with its holdings and contacts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationView {
    /// Identifier.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// ISO 3166 country code.
    #[serde(default)]
    pub country: String,
    /// `automatic` or `manual` (a POST always writes `manual`).
    #[serde(default = "manual")]
    pub layer: String,
    /// Import source (`manual` for the manual layer).
    #[serde(default = "manual")]
    pub source: String,
    /// Prefixes (`192.0.2.0/24`).
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// AS numbers.
    #[serde(default)]
    pub asns: Vec<u32>,
    /// Domains.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Contacts.
    #[serde(default)]
    pub contacts: Vec<ContactView>,
}

/// One line of the organisation list.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct OrganisationSummary {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Country code.
    pub country: String,
    /// `automatic` or `manual`.
    pub layer: String,
    /// Import source.
    pub source: String,
    /// Number of prefixes.
    pub prefixes: u64,
    /// Number of AS numbers.
    pub asns: u64,
    /// Number of domains.
    pub domains: u64,
    /// Number of contacts.
    pub contacts: u64,
}

/// The organisations, manual layer first.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct OrganisationList {
    /// The organisations.
    pub items: Vec<OrganisationSummary>,
}

/// The answer to a lookup.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LookupAnswer {
    /// What was asked.
    pub query: String,
    /// Whether a holder was found.
    pub found: bool,
    /// `prefix`, `asn` or `domain`, when found.
    pub matched_by: Option<String>,
    /// The prefix, AS number or domain that matched.
    pub matched: Option<String>,
    /// The holder.
    pub organisation: Option<OrganisationView>,
    /// The contacts to tell, most specific first.
    pub contacts: Vec<ContactView>,
}

/// Query string of the lookup.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LookupParams {
    /// An address (`192.0.2.1`, `2001:db8::1`), an AS number (`AS64500`) or a domain.
    pub q: String,
}

fn view_of<T: serde::Serialize, V: serde::de::DeserializeOwned>(v: &T) -> Result<V, ApiError> {
    serde_json::to_value(v)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::internal("constituency view", e))
}

/// The organisations of the registry (both layers), manual first.
#[utoipa::path(get, path = "/api/v1/constituency/organisations", tag = "constituency",
    responses(
        (status = 200, description = "The organisations", body = OrganisationList),
        (status = 503, description = "No registry in this server", body = ErrorBody),
    ))]
pub(crate) async fn list(
    h: Option<Extension<ConstituencyHandle>>,
) -> Result<Json<OrganisationList>, ApiError> {
    let h = handle(h)?;
    let items = blocking(move || open(&h)?.summaries().map_err(registry_error)).await?;
    Ok(Json(OrganisationList {
        items: items
            .into_iter()
            .map(|s| OrganisationSummary {
                id: s.id,
                name: s.name,
                country: s.country,
                layer: s.layer.as_str().into(),
                source: s.source,
                prefixes: s.prefixes,
                asns: s.asns,
                domains: s.domains,
                contacts: s.contacts,
            })
            .collect(),
    }))
}

/// Who holds an address (longest prefix), an AS number or a domain, and whom to tell.
#[utoipa::path(get, path = "/api/v1/constituency/lookup", tag = "constituency",
    params(LookupParams),
    responses(
        (status = 200, description = "The holder, or found: false", body = LookupAnswer),
        (status = 400, description = "q is not an address, AS number or domain", body = ErrorBody),
        (status = 503, description = "No registry in this server", body = ErrorBody),
    ))]
pub(crate) async fn lookup(
    h: Option<Extension<ConstituencyHandle>>,
    Query(p): Query<LookupParams>,
) -> Result<Json<LookupAnswer>, ApiError> {
    let h = handle(h)?;
    let q = pharos_constituency::Query::parse(&p.q).map_err(registry_error)?;
    let found = blocking(move || {
        let reg = open(&h)?;
        let table = match q {
            pharos_constituency::Query::Addr(_) => reg.prefix_table().map_err(registry_error)?,
            _ => pharos_constituency::PrefixTableBuilder::default().build(),
        };
        reg.lookup(&table, &q).map_err(registry_error)
    })
    .await?;
    let Some(m) = found else {
        return Ok(Json(LookupAnswer {
            query: p.q,
            found: false,
            matched_by: None,
            matched: None,
            organisation: None,
            contacts: Vec::new(),
        }));
    };
    let (by, what) = match &m.matched {
        pharos_constituency::MatchedBy::Prefix(n) => ("prefix", n.to_string()),
        pharos_constituency::MatchedBy::Asn(a) => ("asn", format!("AS{a}")),
        pharos_constituency::MatchedBy::Domain(d) => ("domain", d.clone()),
    };
    Ok(Json(LookupAnswer {
        query: p.q,
        found: true,
        matched_by: Some(by.into()),
        matched: Some(what),
        organisation: Some(view_of(&m.organisation)?),
        contacts: view_of(&m.contacts)?,
    }))
}

fn require_admin(p: Option<Extension<Principal>>) -> Result<(), ApiError> {
    match p {
        Some(Extension(p)) if p.role.allows(Role::Admin) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "changing the constituency registry needs the admin role",
        )),
    }
}

/// Add to or create a manual organisation (an override that survives imports).
///
/// Prefixes, AS numbers and domains are added; a contact replaces the one with the same mail and
/// webhook or is added; a non-empty name or country replaces the old one.
#[utoipa::path(post, path = "/api/v1/constituency/organisations", tag = "constituency",
    request_body = OrganisationView,
    responses(
        (status = 200, description = "The organisation as it is now (manual over automatic)", body = OrganisationView),
        (status = 400, description = "The body is invalid (the field is named)", body = ErrorBody),
        (status = 503, description = "No registry in this server", body = ErrorBody),
    ))]
pub(crate) async fn upsert(
    h: Option<Extension<ConstituencyHandle>>,
    principal: Option<Extension<Principal>>,
    body: Bytes,
) -> Result<Json<OrganisationView>, ApiError> {
    require_admin(principal)?;
    let h = handle(h)?;
    let mut view: OrganisationView = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "organisation body: {e}; expected {{\"id\": ..., \"prefixes\": [\"192.0.2.0/24\"], \"contacts\": [{{\"mail\": ..., \"policy\": {{\"interval\": \"daily\"}}}}]}}"
        ))
    })?;
    view.layer = "manual".into();
    view.source = "manual".into();
    let org: Organisation = serde_json::to_value(&view)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::bad_request(format!("organisation body: {e}")))?;
    let id = org.id.clone();
    let now = blocking(move || {
        let mut reg = open(&h)?;
        reg.upsert_manual(&org).map_err(registry_error)?;
        Ok(org)
    })
    .await?;
    tracing::info!(org = %pharos_model::text::printable(&id), "constituency: manual organisation set");
    Ok(Json(view_of(&now)?))
}

/// Remove a manual organisation (imported data is changed by re-importing).
#[utoipa::path(delete, path = "/api/v1/constituency/organisations/{id}", tag = "constituency",
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No manual organisation with this id", body = ErrorBody),
        (status = 503, description = "No registry in this server", body = ErrorBody),
    ))]
pub(crate) async fn delete(
    h: Option<Extension<ConstituencyHandle>>,
    principal: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(principal)?;
    let h = handle(h)?;
    let key = id.clone();
    let removed = blocking(move || open(&h)?.remove_manual(&key).map_err(registry_error)).await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no manual organisation {:?}",
            pharos_model::text::printable(&id)
        )))
    }
}
