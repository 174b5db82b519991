//! The processes under test: the release server, a bare poem-openapi server, and what the
//! kernel says about them (peak RSS, CPU time).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `target/release/server`, built now (a no-op when it is up to date).
pub fn release_server() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "server"])
        .current_dir(&workspace)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the release build failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    target.join("release").join("server")
}

/// A child process serving HTTP on `base`; killed on drop.
pub struct Served {
    pub base: String,
    child: Child,
}

impl Served {
    /// Starts `command` (which must listen on `port`) and waits until `health_path` answers.
    pub fn start(name: &str, mut command: Command, port: u16, health_path: &str) -> Self {
        let log = std::env::temp_dir().join(format!("bench-{name}-{port}.log"));
        let file = std::fs::File::create(&log).expect("a log file");
        let child = command
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("the process starts");
        let mut served = Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http_status(&served.base, health_path) == Some(200);
            if up {
                return served;
            }
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("{name} exited with {status}; see {}", log.display());
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not start; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is alive: its `/proc` entry exists and is not a zombie.
    pub fn is_running(&self) -> bool {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        matches!(state, Some(s) if s != "Z")
    }

    /// Forgets the peak RSS so far (Linux: `clear_refs` 5 resets `VmHWM`).
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    /// Peak resident set since the last reset, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// User plus system CPU time so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of stat(5); `fields` starts at field 3.
        (ticks(11) + ticks(12)) / clock_ticks_per_second()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The status of a plain GET, or `None` when nothing answers.
pub fn http_status(base: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The bare baseline: one poem-openapi endpoint answering what `/health` answers, with no
/// middleware, state or logging. Runs in this binary, re-executed with `--bare-server PORT`.
pub mod bare {
    use poem::{Route, Server, listener::TcpListener};
    use poem_openapi::{Object, OpenApi, OpenApiService, payload::Json};

    #[derive(Object)]
    struct Health {
        status: String,
    }

    struct Api;

    #[OpenApi]
    impl Api {
        #[oai(path = "/health", method = "get")]
        async fn health(&self) -> Json<Health> {
            Json(Health {
                status: "ok".into(),
            })
        }
    }

    pub fn serve(port: u16) -> ! {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let result = runtime.block_on(async {
            let api = OpenApiService::new(Api, "bare", "1").url_prefix("/api/v1");
            let app = Route::new().nest("/api/v1", api);
            Server::new(TcpListener::bind(format!("127.0.0.1:{port}")))
                .run(app)
                .await
        });
        eprintln!("bare server stopped: {result:?}");
        std::process::exit(1)
    }
}
