//! The connection loop: hyper, serving the poem application, with the limits poem's own
//! `Server` leaves unset. What one anonymous peer can hold is bounded here: the number of open
//! connections, the time to send a request's headers (slowloris), the header buffer, and the
//! time the process keeps draining after a stop.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use poem::{
    Addr, Endpoint, Request,
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{net::TcpListener, sync::Semaphore};

/// The bounds of the connection loop (settings `MAX_CONNECTIONS`, `HEADER_READ_TIMEOUT_MS`,
/// `MAX_HEADER_BUFFER_BYTES`, `SHUTDOWN_GRACE_SECONDS`).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections at most; past it, new ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// A request's headers must arrive within this, counted from the connection's first byte
    /// or the previous answer: a client that trickles them is disconnected, and an idle
    /// keep-alive connection is closed after it.
    pub header_read_timeout: Duration,
    /// hyper's read buffer per HTTP/1 connection: a request line and headers longer than this
    /// are refused by hyper itself (431, without a body). The JSON limits on the URI and headers
    /// sit below it, in the request middleware.
    pub max_header_buffer_bytes: usize,
    /// After the stop signal: how long in-flight requests may still finish.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `stop` resolves; then stops accepting, lets the open
/// requests finish (each connection closes after its current answer), and returns once all are
/// done or `shutdown_grace` has passed.
pub async fn serve<E>(
    listener: TcpListener,
    app: E,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let local_addr = LocalAddr(Addr::SocketAddr(listener.local_addr()?));
    let app = Arc::new(app);
    let connection_slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let draining = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_buffer_bytes.max(MIN_HYPER_BUFFER_BYTES));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout)
        .max_header_list_size(u32::try_from(limits.max_header_buffer_bytes).unwrap_or(u32::MAX));
    tokio::pin!(stop);

    loop {
        let slot = tokio::select! {
            () = &mut stop => break,
            slot = connection_slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, or the peer gave up before the accept: waiting
                    // a little lets descriptors free up instead of spinning.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = request_service(app.clone(), local_addr.clone(), peer);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = draining.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(slot);
        });
    }

    drop(listener);
    let open = draining.count();
    if open > 0 {
        tracing::info!(open, "draining connections");
    }
    tokio::select! {
        () = draining.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace_secs = limits.shutdown_grace.as_secs_f64(),
                "connections still open after the shutdown grace period; closing them");
        }
    }
    Ok(())
}

/// hyper refuses a smaller HTTP/1 read buffer.
const MIN_HYPER_BUFFER_BYTES: usize = 8192;
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// One connection's hyper service: each request is handed to the poem application with the
/// addresses poem's extractors expect.
fn request_service<E>(
    app: Arc<E>,
    local_addr: LocalAddr,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = hyper::Response<ResponseBody>,
    Error = Infallible,
    Future: Send + 'static,
> + Send
+ 'static
where
    E: Endpoint + 'static,
{
    let remote_addr = RemoteAddr(Addr::SocketAddr(peer));
    service_fn(move |req: hyper::Request<Incoming>| {
        let app = app.clone();
        let request = Request::from((req, local_addr.clone(), remote_addr.clone(), Scheme::HTTP));
        async move { Ok::<_, Infallible>(app.get_response(request).await.into()) }
    })
}

/// The body type poem's responses convert into for hyper.
type ResponseBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;
