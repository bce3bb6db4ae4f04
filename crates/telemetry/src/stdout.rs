//! stdout written by a thread of its own, in batches.
//!
//! A log line is appended to a shared buffer under a mutex and nothing else: no channel
//! send, no wake-up. The writer thread takes the whole buffer every [`FLUSH_INTERVAL`] and
//! writes it with one call. tracing-appender's non-blocking writer, used before, woke its
//! thread for every line (a futex wake and a context switch per request's access log: the
//! largest cost of a request on a loaded 2-core machine, docs/BENCHMARKS.md). A slow
//! reader of the pipe still never blocks a request: beyond [`BUFFER_LIMIT`] lines are
//! dropped and counted.
//!
//! Self-contained (std and tracing-subscriber only): the telemetry bench compiles this
//! file into itself to measure the production pipeline.

use std::{
    io::Write,
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

/// How long a line may wait in the buffer: one write call per interval under load.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Bytes buffered at most; a line that does not fit is dropped and counted.
pub const BUFFER_LIMIT: usize = 4 << 20;

#[derive(Default)]
struct State {
    buffer: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    closed: Condvar,
    dropped: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writer handed to the fmt layer. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

impl BatchedWriter {
    /// Lines dropped so far because the buffer was full.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Write for &BatchedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        if state.buffer.len() + bytes.len() > BUFFER_LIMIT {
            drop(state);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            state.buffer.extend_from_slice(bytes);
        }
        // Reported as written either way: a dropped line is counted, not an error.
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Write for BatchedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        (&*self).write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedWriter {
    // A reference, not a clone: an `Arc` count up and down per line is not free.
    type Writer = &'a BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Writes what is left and stops the writer thread when dropped.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.closed.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A batched writer into `out` and the guard that flushes it.
pub fn batched<W: Write + Send + 'static>(mut out: W) -> (BatchedWriter, Flusher) {
    let shared = Arc::new(Shared::default());
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("stdout-logs".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    let closed = {
                        let state = shared.lock();
                        // Sleeps the whole interval (writers never wake it); only closing does.
                        let (mut state, _) = shared
                            .closed
                            .wait_timeout_while(state, FLUSH_INTERVAL, |s| !s.closed)
                            .unwrap_or_else(|e| e.into_inner());
                        std::mem::swap(&mut state.buffer, &mut batch);
                        state.closed
                    };
                    if !batch.is_empty() {
                        let _ = out.write_all(&batch);
                        let _ = out.flush();
                        batch.clear();
                    }
                    if closed {
                        return;
                    }
                }
            })
            .ok()
    };
    (
        BatchedWriter {
            shared: shared.clone(),
        },
        Flusher { shared, thread },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_and_all_are_written_on_drop() {
        let sink = Sink::default();
        let (mut writer, flusher) = batched(sink.clone());
        for i in 0..1000 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        drop(flusher);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[999], "line 999");
        assert_eq!(writer.dropped_lines(), 0);
    }

    #[test]
    fn lines_arrive_without_a_flush_within_the_interval() {
        let sink = Sink::default();
        let (mut writer, _flusher) = batched(sink.clone());
        writer.write_all(b"hello\n").unwrap();
        std::thread::sleep(FLUSH_INTERVAL * 4);
        assert_eq!(sink.0.lock().unwrap().as_slice(), b"hello\n");
    }

    #[test]
    fn a_full_buffer_drops_and_counts_lines_instead_of_blocking() {
        // A writer that never finishes its first write: the pipe's reader has stalled.
        struct Stalled;
        impl Write for Stalled {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(0)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (mut writer, flusher) = batched(Stalled);
        let line = vec![b'x'; 1 << 16];
        for _ in 0..(2 * BUFFER_LIMIT / line.len() + 10) {
            writer.write_all(&line).unwrap();
        }
        assert!(writer.dropped_lines() > 0);
        // The stalled thread is never joined.
        std::mem::forget(flusher);
    }
}
