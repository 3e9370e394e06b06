//! The exposition sent as it is written: a blocking task writes it into chunks of about
//! [`CHUNK`] bytes, each cut at a line end, and hands them to the HTTP body through a short
//! queue. At 50,000 monitors the text is ~150 MB; whole, it was the largest allocation of a
//! scrape (BENCHMARKS.md "Memory per monitor"); this way a scrape holds a few chunks.
//!
//! The writer waits for the client to take each chunk, so it must not hold a lock that anything
//! else needs: callers write lock-free rows here and anything behind a lock into memory first.
//!
//! Owns: chunking and the hand-off. Does not own: what is written (`super`).

use std::fmt;
use std::time::Duration;

use futures_util::Stream;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// A chunk is sent once it holds at least this much (whole lines only).
pub const CHUNK: usize = 64 * 1024;
/// Chunks written ahead of the client.
const AHEAD: usize = 4;
/// A client that takes no chunk for this long loses the rest of the scrape (the body ends
/// without `# EOF`, which scrapers report): it must not hold a thread for ever.
const SEND_LIMIT: Duration = Duration::from_secs(30);

struct ChunkWriter {
    buf: String,
    tx: mpsc::Sender<String>,
    runtime: Handle,
}

impl ChunkWriter {
    fn send(&mut self, chunk: String) -> fmt::Result {
        let sent = self
            .runtime
            .block_on(tokio::time::timeout(SEND_LIMIT, self.tx.send(chunk)));
        match sent {
            Ok(Ok(())) => Ok(()),
            // The client went away or stopped reading: stop writing.
            _ => Err(fmt::Error),
        }
    }

    /// Sends the complete lines written so far; the rest stays for the next chunk.
    fn send_lines(&mut self) -> fmt::Result {
        let Some(end) = self.buf.rfind('\n') else {
            return Ok(());
        };
        let mut next = String::with_capacity(CHUNK + CHUNK / 4);
        next.push_str(&self.buf[end + 1..]);
        self.buf.truncate(end + 1);
        let chunk = std::mem::replace(&mut self.buf, next);
        self.send(chunk)
    }

    fn finish(mut self) -> fmt::Result {
        let rest = std::mem::take(&mut self.buf);
        if rest.is_empty() {
            return Ok(());
        }
        self.send(rest)
    }
}

impl fmt::Write for ChunkWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK {
            self.send_lines()?;
        }
        Ok(())
    }
}

/// The text `write` produces, as a stream of chunks cut at line ends. `write` runs on a blocking
/// thread; dropping the stream stops it at its next chunk.
pub fn stream<F>(write: F) -> impl Stream<Item = String> + Send + 'static
where
    F: FnOnce(&mut dyn fmt::Write) -> fmt::Result + Send + 'static,
{
    let (tx, rx) = mpsc::channel(AHEAD);
    let runtime = Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter {
            buf: String::with_capacity(CHUNK + CHUNK / 4),
            tx,
            runtime,
        };
        if write(&mut writer).and_then(|()| writer.finish()).is_err() {
            tracing::debug!("a /metrics client went away or stopped reading; the scrape ends");
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk, rx))
    })
}

#[cfg(test)]
mod tests {

    use futures_util::StreamExt;

    use super::*;

    fn lines(count: usize) -> String {
        (0..count).map(|i| format!("line {i:08}\n")).collect()
    }

    #[tokio::test]
    async fn chunks_are_whole_lines_and_together_are_the_text() {
        let text = lines(20_000);
        let written = text.clone();
        let chunks: Vec<String> = stream(move |w| {
            for line in written.split_inclusive('\n') {
                w.write_str(line)?;
            }
            Ok(())
        })
        .collect()
        .await;
        assert!(chunks.len() > 3, "{} chunks", chunks.len());
        for chunk in &chunks {
            assert!(chunk.ends_with('\n'));
            assert!(chunk.len() < CHUNK + 64, "{}", chunk.len());
        }
        assert_eq!(chunks.concat(), text);
    }

    #[tokio::test]
    async fn a_client_that_goes_away_stops_the_writer() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut chunks = Box::pin(stream(move |w| {
            let mut result = Ok(());
            for i in 0.. {
                result = writeln!(w, "line {i:08}");
                if result.is_err() || i > 10_000_000 {
                    break;
                }
            }
            let _ = done_tx.send(result);
            Ok(())
        }));
        assert!(chunks.next().await.is_some());
        drop(chunks);
        assert_eq!(done_rx.await.expect("the writer ends"), Err(fmt::Error));
    }
}
