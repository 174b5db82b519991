//! Where log lines go: appended to a shared buffer by the thread that logs, and written out in
//! batches by a thread of their own.
//!
//! A channel per line (tracing-appender's design) wakes the writer thread for nearly every line
//! and copies each line into its own allocation; under load that cost a quarter of a cheap
//! request's throughput. Here a line costs one uncontended lock and a copy, the writer wakes on
//! a timer (or when the buffer is half full), and one `write` carries thousands of lines.

use std::{
    io::{self, Write},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait before it is written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

struct Shared {
    pending: Mutex<Vec<u8>>,
    /// Beyond this many waiting bytes new lines are dropped (and counted) rather than holding
    /// requests up or growing without bound when the output cannot keep up.
    capacity: usize,
    dropped: AtomicU64,
    stopping: AtomicBool,
}

/// The `MakeWriter` handed to the formatting layer; cheap to clone.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
    flusher: Arc<thread::Thread>,
}

/// Keeps the writer thread alive; dropping it writes what is left and stops the thread.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchedWriter {
    /// Starts the writer thread, which writes to `output`.
    pub fn spawn<W: Write + Send + 'static>(
        output: W,
        capacity: usize,
    ) -> io::Result<(Self, FlushGuard)> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::with_capacity(capacity / 4)),
            capacity,
            dropped: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        let thread = thread::Builder::new().name("log-writer".into()).spawn({
            let shared = shared.clone();
            move || write_batches(&shared, output)
        })?;
        let writer = Self {
            shared: shared.clone(),
            flusher: Arc::new(thread.thread().clone()),
        };
        let guard = FlushGuard {
            shared,
            thread: Some(thread),
        };
        Ok((writer, guard))
    }

    /// Lines dropped so far because the output could not keep up.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Write for &BatchedWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let half_full = {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if pending.len() + line.len() > self.shared.capacity {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(line.len());
            }
            let was_below = pending.len() < self.shared.capacity / 2;
            pending.extend_from_slice(line);
            was_below && pending.len() >= self.shared.capacity / 2
        };
        if half_full {
            self.flusher.unpark();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = &'a BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

fn write_batches<W: Write>(shared: &Shared, mut output: W) {
    let mut batch = Vec::with_capacity(shared.capacity / 4);
    let mut reported_drops = 0;
    loop {
        let stopping = shared.stopping.load(Ordering::Acquire);
        std::mem::swap(
            &mut *shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            &mut batch,
        );
        let dropped = shared.dropped.load(Ordering::Relaxed);
        if dropped > reported_drops {
            let _ = writeln!(
                batch,
                "log-writer: {} log lines dropped because the output could not keep up",
                dropped - reported_drops
            );
            reported_drops = dropped;
        }
        // A failing output (a closed pipe) must not stop the service; the lines are lost.
        let _ = output.write_all(&batch).and_then(|()| output.flush());
        batch.clear();
        if stopping {
            return;
        }
        thread::park_timeout(FLUSH_INTERVAL);
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read back; each write takes `delay`.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>, Duration);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            thread::sleep(self.1);
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn lines_are_written_in_order_and_the_rest_is_flushed_when_the_guard_drops() {
        let output = Captured::default();
        let (writer, guard) = BatchedWriter::spawn(output.clone(), 1024 * 1024).unwrap();
        for i in 0..1000 {
            (&writer)
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let text = output.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert_eq!((lines[0], lines[999]), ("line 0", "line 999"));
        assert_eq!(writer.dropped(), 0);
    }

    #[test]
    fn past_its_capacity_lines_are_dropped_counted_and_reported() {
        // An output slower than the lines: at most two 31-byte lines wait in the 64 bytes.
        let output = Captured(Arc::default(), Duration::from_millis(300));
        let (writer, guard) = BatchedWriter::spawn(output.clone(), 64).unwrap();
        let line = [b'x'; 31];
        for _ in 0..10 {
            (&writer).write_all(&line).unwrap();
        }
        let dropped = writer.dropped();
        assert!(dropped >= 1, "nothing dropped");
        drop(guard);
        let text = output.text();
        assert!(
            text.contains(&format!("{dropped} log lines dropped")),
            "the drop is reported: {text}"
        );
    }
}
