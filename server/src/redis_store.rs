//! The shared Redis connection and its key namespace.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    /// Prepended to every key, so that several deployments (or test runs) can share a server.
    prefix: String,
}

impl RedisStore {
    /// Opens a connection that is made on first use and remade after a failure, so the server
    /// starts and keeps serving while Redis is away. A malformed URL is an error now.
    ///
    /// Timeouts are short: a request that touches Redis must not hang on an outage, and every
    /// user of this store has a fallback for a failed command.
    pub fn open(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
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
