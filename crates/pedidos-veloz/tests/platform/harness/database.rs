//! The fresh PostgreSQL database of one platform: created from the admin URL
//! (`PV_TEST_POSTGRES_URL`), owned by a login role of its own when asked, and dropped,
//! with that role, when the platform goes.

use sqlx::Connection;

use super::postgres_admin_url;

pub struct TestDatabase {
    admin: String,
    name: String,
    own_role: bool,
}

impl TestDatabase {
    /// Creates the database, and with `own_role` a role of the same name that owns
    /// it; returns it and the URL the platform connects with.
    pub async fn create(own_role: bool) -> (TestDatabase, String) {
        let admin = postgres_admin_url();
        let name = format!("pv_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to the PostgreSQL admin URL");
        let mut base = server(&admin).to_owned();
        let create = if own_role {
            sqlx::query(&format!("CREATE ROLE {name} LOGIN"))
                .execute(&mut conn)
                .await
                .expect("create the test role");
            base = with_user(&base, &name);
            format!("CREATE DATABASE {name} OWNER {name}")
        } else {
            format!("CREATE DATABASE {name}")
        };
        sqlx::query(&create)
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = format!("{base}/{name}");
        let database = TestDatabase {
            admin,
            name,
            own_role,
        };
        (database, url)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database as the admin URL's superuser reaches it.
    pub fn admin_url(&self) -> String {
        format!("{}/{}", server(&self.admin), self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name, own_role) = (self.admin.clone(), self.name.clone(), self.own_role);
        // Best effort, on a thread of its own: the test's runtime may be going away.
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                        if own_role {
                            let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {name}"))
                                .execute(&mut conn)
                                .await;
                        }
                    }
                });
            }
        })
        .join()
        .ok();
    }
}

/// A database URL without its database: `postgres://user@host:port`.
fn server(url: &str) -> &str {
    url.rsplit_once('/').map_or(url, |(server, _)| server)
}

/// `postgres://user@host/…` with another user (and no password).
pub fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}
