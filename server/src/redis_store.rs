//! The shared Redis connection and its key namespace.

use redis::aio::ConnectionManager;

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    /// Prepended to every key, so that several deployments (or test runs) can share a server.
    prefix: String,
}

impl RedisStore {
    /// Connects now, so that a wrong URL or a stopped server stops start-up with a clear error.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client).await?;
        Ok(Self {
            connection,
            prefix: prefix.to_string(),
        })
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.connection();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}
