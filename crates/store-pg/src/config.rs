//! `[postgres]` of `pharos.toml`: where the shared message store is.

use std::path::PathBuf;

use pharos_model::config::ConfigError;
use serde::{Deserialize, Serialize};

use crate::{PgError, PgStore};

/// `[postgres]` settings: the message store on PostgreSQL (scale-out roles; a single node keeps
/// its messages in SQLite under `[store] data_dir`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// libpq connection string without the password: key=value pairs
    /// (`host=/run/postgresql dbname=pharos user=pharos`, the default) or a URL
    /// (`postgresql://pharos@db.example.net/pharos`).
    pub url: String,
    /// A file holding the password (default: none, for peer or trust authentication); kept out
    /// of `url` so the configuration file can be shown and shared.
    pub password_file: Option<PathBuf>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "host=/run/postgresql dbname=pharos user=pharos".into(),
            password_file: None,
        }
    }
}

impl PostgresConfig {
    /// Checks the keys; the error names the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let config: postgres::Config = self.url.parse().map_err(|e: postgres::Error| {
            ConfigError::new(
                "postgres",
                "url",
                format!("{:?}", crate::store::redact(&self.url)),
                format!(
                    "a libpq connection string such as \"host=/run/postgresql dbname=pharos user=pharos\" or \"postgresql://pharos@db/pharos\" ({})",
                    crate::describe(&e)
                ),
            )
        })?;
        if config.get_password().is_some() {
            return Err(ConfigError::new(
                "postgres",
                "url",
                format!("{:?}", crate::store::redact(&self.url)),
                "no password in the connection string: put it in a file and set password_file",
            ));
        }
        Ok(())
    }

    /// Connects (see [`PgStore::connect`]), with the password read from `password_file`.
    pub fn connect(&self) -> Result<PgStore, PgError> {
        self.validate().map_err(|e| PgError::Config {
            given: crate::store::redact(&self.url),
            reason: e.to_string(),
        })?;
        let mut config: postgres::Config = self.url.parse().map_err(|e| PgError::Config {
            given: crate::store::redact(&self.url),
            reason: crate::describe(&e),
        })?;
        if let Some(p) = &self.password_file {
            let password = std::fs::read_to_string(p).map_err(|e| PgError::Config {
                given: crate::store::redact(&self.url),
                reason: format!(
                    "[postgres] password_file = {:?}: cannot read it: {e}",
                    p.display()
                ),
            })?;
            config.password(password.trim_end_matches(['\r', '\n']));
        }
        PgStore::with_config(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_mistakes_name_the_key() {
        PostgresConfig::default().validate().unwrap();
        let bad = PostgresConfig {
            url: "hots=db".into(),
            ..Default::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(
            e.contains("postgres") && e.contains("url") && e.contains("hots"),
            "{e}"
        );
        let secret = PostgresConfig {
            url: "postgresql://pharos:s3cret@db/pharos".into(),
            ..Default::default()
        };
        let e = secret.validate().unwrap_err().to_string();
        assert!(e.contains("password_file") && !e.contains("s3cret"), "{e}");
        let toml = "url = \"host=db\"\npassword_file = \"/etc/pharos/pg.pass\"\n";
        let c: PostgresConfig = toml::from_str(toml).unwrap();
        assert_eq!(c.password_file, Some(PathBuf::from("/etc/pharos/pg.pass")));
        assert!(toml::from_str::<PostgresConfig>("uri = \"x\"").is_err());
    }

    #[test]
    fn an_unreadable_password_file_is_an_error_naming_it() {
        let c = PostgresConfig {
            url: "host=/nonexistent dbname=pharos".into(),
            password_file: Some("/nonexistent/pg.pass".into()),
        };
        let e = c.connect().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/pg.pass"), "{e}");
    }
}
