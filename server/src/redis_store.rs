//! The shared Redis connection and its key namespace: one server, or a Redis Cluster.

use std::time::Duration;

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterConfig},
    cluster_async::ClusterConnection,
};

/// The URL scheme that names a cluster: `redis-cluster://[user:password@]host:port,host:port`.
pub const CLUSTER_SCHEME: &str = "redis-cluster://";

/// Short timeouts: a request that touches Redis must not hang on an outage, and every user of
/// this store has a fallback for a failed command.
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct RedisStore {
    connection: RedisConnection,
    /// Prepended to every key, so that several deployments (or test runs) can share a server.
    prefix: String,
}

/// A connection to one server or to a cluster; both reconnect by themselves. Commands and
/// scripts are sent the same way to either (`query_async`, `invoke_async`): on a cluster each
/// goes to the node that holds its keys, so keys that one command or script uses together
/// share a hash tag (`{...}`).
#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisStore {
    /// Opens a connection that is made on first use and remade after a failure, so the server
    /// starts and keeps serving while Redis is away. A malformed URL is an error now.
    ///
    /// `redis://…` (or `rediss://…`, `unix://…`) is one server; `redis-cluster://host:port,…`
    /// names a cluster by some of its nodes, the rest being discovered.
    pub fn open(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let connection = match url.strip_prefix(CLUSTER_SCHEME) {
            Some(nodes) => RedisConnection::Cluster(open_cluster(nodes)?),
            None => {
                let client = redis::Client::open(url)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                RedisConnection::Single(ConnectionManager::new_lazy_with_config(client, config)?)
            }
        };
        Ok(Self {
            connection,
            prefix: prefix.to_string(),
        })
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }

    /// Whether keys in different hash slots may live on different nodes: a script can then
    /// only touch keys of one slot.
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, RedisConnection::Cluster(_))
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.connection();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// `[user:password@]host:port,host:port,…`: the credentials apply to every node.
fn open_cluster(nodes: &str) -> anyhow::Result<ClusterConnection> {
    let (credentials, hosts) = match nodes.rsplit_once('@') {
        Some((credentials, hosts)) => (Some(credentials), hosts),
        None => (None, nodes),
    };
    let urls: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| match credentials {
            Some(credentials) => format!("redis://{credentials}@{host}"),
            None => format!("redis://{host}"),
        })
        .collect();
    anyhow::ensure!(!urls.is_empty(), "a cluster URL names at least one node");
    let client = ClusterClient::builder(urls).retries(1).build()?;
    let config = ClusterConfig::new()
        .set_connection_timeout(CONNECTION_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT);
    // Connects in the background: the first commands fail until the cluster answers.
    Ok(client.get_pending_async_connection_with_config(config))
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cluster_urls_name_their_nodes_and_bad_ones_are_refused() {
        let store = RedisStore::open("redis-cluster://127.0.0.1:7000,127.0.0.1:7001", "p:")
            .expect("a cluster URL");
        assert!(store.is_cluster());
        assert!(RedisStore::open("redis-cluster://", "p:").is_err());
        let single = RedisStore::open("redis://127.0.0.1:6379", "p:").expect("a server URL");
        assert!(!single.is_cluster());
    }
}
