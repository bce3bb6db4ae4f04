//! Postgres for the services that own tables (feature `postgres`).
//!
//! Such a service starts before Postgres is up: its pool connects on first use, and its
//! migrations run in the background, retried with [`crate::startup::retry_until_ready`].
//! Until they are applied, `/readyz` says so and nothing touches the tables.

use crate::{serve::ServiceError, startup::retry_until_ready};
use sqlx::{
    AssertSqlSafe, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use std::{str::FromStr, time::Duration};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a query waits for a free connection before it fails.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A pool of up to `max_connections` that connects on first use, so the service starts
/// (and answers `/readyz` with 503) before Postgres is up. With a `schema`, that schema is
/// every connection's `search_path`. A `url` that does not parse is a configuration error
/// naming `DATABASE_URL`, without its password.
pub fn lazy_pool(
    url: &str,
    max_connections: u32,
    schema: Option<&str>,
) -> Result<PgPool, ServiceError> {
    let mut options =
        PgConnectOptions::from_str(url).map_err(|e| ServiceError::invalid_database_url(url, e))?;
    if let Some(schema) = schema {
        options = options.options([("search_path", schema)]);
    }
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options))
}

/// Applies `migrator` in a background task, retrying with backoff until Postgres answers
/// or `shutdown` is cancelled. With a `schema`, it creates that schema first (the service
/// keeps its tables and its migration history there).
pub fn migrate_in_background(
    pool: PgPool,
    migrator: &'static Migrator,
    schema: Option<&'static str>,
    shutdown: CancellationToken,
) -> Migrations {
    let (done, state) = watch::channel(None);
    tokio::spawn(async move {
        let applied = retry_until_ready("database migrations", &shutdown, || async {
            if let Some(schema) = schema {
                // The name is the service's own constant, never input.
                sqlx::query(AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS {schema}"
                )))
                .execute(&pool)
                .await
                .map_err(|e| e.to_string())?;
            }
            migrator.run(&pool).await.map_err(|e| e.to_string())
        })
        .await;
        done.send_replace(Some(applied));
    });
    Migrations(state)
}

/// Whether the background migrations are done: for readiness, and for work that needs
/// the tables.
#[derive(Debug, Clone)]
pub struct Migrations(watch::Receiver<Option<bool>>);

impl Migrations {
    /// `Ok` once the migrations are applied, else why not: the first half of a Postgres
    /// readiness check.
    pub fn ready(&self) -> Result<(), String> {
        match *self.0.borrow() {
            Some(true) => Ok(()),
            _ => Err("migrations not applied yet".to_owned()),
        }
    }

    /// Waits until the migrations are applied (true), or were given up because the
    /// service is shutting down (false).
    pub async fn applied(mut self) -> bool {
        matches!(
            self.0.wait_for(Option::is_some).await.as_deref(),
            Ok(Some(true))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

    /// A URL on which nothing listens: the port was just free and is closed again.
    fn closed_port_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        format!("postgres://demo:secret@127.0.0.1:{port}/orders")
    }

    #[tokio::test]
    async fn a_bad_url_names_database_url_without_its_password() {
        let error = lazy_pool("postgres://demo:secret@/orders?sslmode=sometimes", 1, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("DATABASE_URL"), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }

    #[tokio::test]
    async fn the_schema_is_the_search_path() {
        let pool = lazy_pool(&closed_port_url(), 2, Some("fulfilment")).unwrap();
        assert_eq!(
            pool.connect_options().get_options(),
            Some("-c search_path=fulfilment")
        );
        assert_eq!(pool.options().get_max_connections(), 2);
        let plain = lazy_pool(&closed_port_url(), 1, None).unwrap();
        assert_eq!(plain.connect_options().get_options(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn migrations_are_not_ready_until_applied_and_shutdown_gives_them_up() {
        let shutdown = CancellationToken::new();
        let pool = lazy_pool(&closed_port_url(), 1, None).unwrap();
        let migrations =
            migrate_in_background(pool, &NO_MIGRATIONS, Some("fulfilment"), shutdown.clone());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            migrations.ready(),
            Err("migrations not applied yet".to_owned())
        );
        shutdown.cancel();
        assert!(!migrations.clone().applied().await);
        assert!(migrations.ready().is_err());
    }
}
