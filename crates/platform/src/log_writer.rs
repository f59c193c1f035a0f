//! Standard output for the log lines, buffered per runtime worker thread.
//!
//! Unbuffered, every line is one `write(2)` (~5 µs of the ~12 µs a request's access
//! line costs, docs/performance.md). A runtime worker thread instead gathers its lines
//! and writes them in one call when it runs out of work ([`on_park`], tokio's
//! `on_thread_park`), when it stops, when it holds [`FLUSH_BYTES`], or when its oldest
//! line waited [`MAX_DELAY`]. So a line reaches the collector at most that late, and a
//! crash (the release build aborts on panic) loses the lines gathered since the thread
//! last parked. Only threads that park get a buffer: the main thread, blocking threads
//! (which never call the park hook and could hold a line for seconds) and the runtimes
//! of tests write every line at once.
//!
//! Each flush writes whole lines under standard output's lock, so lines of two threads
//! never interleave; between threads they may arrive out of order by up to
//! [`MAX_DELAY`] (every line carries its timestamp).

use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// A thread's buffer is written out once it holds this much (~25 access lines).
pub const FLUSH_BYTES: usize = 8 * 1024;

/// No line waits longer than this in a buffer while its thread keeps busy (checked
/// when the next line arrives).
pub const MAX_DELAY: Duration = Duration::from_millis(50);

struct Pending {
    bytes: Vec<u8>,
    since: Option<Instant>,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// For a runtime's `on_thread_park`: from its first park on, the worker gathers its
/// lines; each park writes them out.
pub fn on_park() {
    buffer_this_thread();
    flush();
}

/// Gives the current thread a line buffer.
fn buffer_this_thread() {
    PENDING.with(|pending| {
        pending.borrow_mut().get_or_insert_with(|| Pending {
            bytes: Vec::with_capacity(FLUSH_BYTES * 2),
            since: None,
        });
    });
}

/// Writes out the current thread's gathered lines (for `on_thread_stop`).
pub fn flush() {
    flush_to(&mut to_stdout);
}

/// Where lines go: standard output, under its lock. A log line that cannot be written
/// has nowhere to be reported, so a failed write is dropped.
fn to_stdout(bytes: &[u8]) {
    let _ = std::io::stdout().lock().write_all(bytes);
}

fn flush_to(out: &mut dyn FnMut(&[u8])) {
    PENDING.with(|pending| {
        if let Ok(mut pending) = pending.try_borrow_mut() {
            if let Some(pending) = pending.as_mut() {
                pending.write_out(out);
            }
        }
    });
}

impl Pending {
    fn write_out(&mut self, out: &mut dyn FnMut(&[u8])) {
        if !self.bytes.is_empty() {
            out(&self.bytes);
            self.bytes.clear();
        }
        self.since = None;
    }
}

/// Gathers `line` in the thread's buffer, writing the buffer out when it is full or
/// its oldest line waited long enough; a thread without a buffer writes `line` at once.
fn write_line(line: &[u8], out: &mut dyn FnMut(&[u8])) {
    PENDING.with(|pending| match pending.try_borrow_mut() {
        Ok(mut pending) => match pending.as_mut() {
            Some(pending) => {
                let now = Instant::now();
                let since = *pending.since.get_or_insert(now);
                pending.bytes.extend_from_slice(line);
                if pending.bytes.len() >= FLUSH_BYTES || now.duration_since(since) >= MAX_DELAY {
                    pending.write_out(out);
                }
            }
            None => out(line),
        },
        Err(_) => out(line),
    });
}

/// Writes whole lines (one or more, each ending in a newline) as the log layer's are.
pub fn write(lines: &[u8]) {
    write_line(lines, &mut to_stdout);
}

/// The `MakeWriter` of the log layer: standard output, through the thread's buffer if
/// it has one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl<'a> MakeWriter<'a> for Stdout {
    type Writer = Stdout;

    fn make_writer(&'a self) -> Self::Writer {
        Stdout
    }
}

impl Write for Stdout {
    /// The formatter hands over one whole line per call.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        write_line(line, &mut to_stdout);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` on a thread of its own (the buffer is per thread) with a sink that
    /// records each write.
    fn on_a_thread(
        buffered: bool,
        test: impl FnOnce(&mut dyn FnMut(&[u8]), &dyn Fn() -> Vec<Vec<u8>>) + Send + 'static,
    ) {
        std::thread::spawn(move || {
            if buffered {
                buffer_this_thread();
            }
            let writes = std::rc::Rc::new(RefCell::new(Vec::new()));
            let sink = writes.clone();
            let mut out = move |bytes: &[u8]| sink.borrow_mut().push(bytes.to_vec());
            let seen = move || writes.borrow().clone();
            test(&mut out, &seen);
        })
        .join()
        .expect("the test thread");
    }

    const LINE: &[u8] = b"{\"message\":\"request\"}\n";

    #[test]
    fn an_unbuffered_thread_writes_every_line_at_once() {
        on_a_thread(false, |out, writes| {
            write_line(LINE, out);
            write_line(LINE, out);
            assert_eq!(writes(), vec![LINE.to_vec(), LINE.to_vec()]);
        });
    }

    #[test]
    fn a_buffered_thread_writes_its_lines_in_one_call_when_flushed() {
        on_a_thread(true, |out, writes| {
            for _ in 0..3 {
                write_line(LINE, out);
            }
            assert!(writes().is_empty());
            flush_to(out);
            assert_eq!(writes(), vec![LINE.repeat(3)]);
            flush_to(out);
            assert_eq!(writes().len(), 1, "nothing left to write");
        });
    }

    #[test]
    fn a_full_buffer_is_written_at_once() {
        on_a_thread(true, |out, writes| {
            let lines = FLUSH_BYTES / LINE.len() + 1;
            for _ in 0..lines {
                write_line(LINE, out);
            }
            assert_eq!(writes(), vec![LINE.repeat(lines)]);
        });
    }

    #[test]
    fn a_line_waits_no_longer_than_the_delay() {
        on_a_thread(true, |out, writes| {
            write_line(b"first\n", out);
            assert!(writes().is_empty());
            std::thread::sleep(MAX_DELAY + Duration::from_millis(5));
            write_line(b"second\n", out);
            assert_eq!(writes(), vec![b"first\nsecond\n".to_vec()]);
        });
    }
}
