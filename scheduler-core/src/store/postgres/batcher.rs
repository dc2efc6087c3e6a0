//! Small writes arriving concurrently, made with one statement and one commit.
//!
//! An API write (a create, an audit entry) is a small insert whose cost is dominated by its
//! commit (a WAL flush). A batcher thread takes every item waiting at that moment (up to a
//! limit), writes them together, and answers each caller once the batch is committed: under
//! load many writes share one commit; alone, a write waits for nothing but a thread hop. An
//! item may also be handed over without waiting ([`Batcher::send`]); its failure is logged.

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use diesel::pg::PgConnection;

use super::PgPool;
use crate::store::StoreError;

/// Writes a batch; one answer per item, in order (or one error for the whole batch).
pub(super) type WriteBatch<T, R> = fn(&mut PgConnection, &[&T]) -> Result<Vec<Result<R, StoreError>>, StoreError>;

type Reply<R> = Sender<Result<R, StoreError>>;

/// The handle callers use; the thread ends when it is dropped.
pub(super) struct Batcher<T: Send + 'static, R: Send + 'static> {
    tx: Option<Sender<(T, Option<Reply<R>>)>>,
    handle: Option<JoinHandle<()>>,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the thread `name`, writing up to `max` items at a time with `write`.
    pub(super) fn start(name: &str, max: usize, pool: PgPool, write: WriteBatch<T, R>) -> Batcher<T, R> {
        let (tx, rx) = unbounded::<(T, Option<Reply<R>>)>();
        let thread = name.to_owned();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(&thread, &pool, &rx, max, write))
            .expect("spawn a batch writer thread");
        Batcher { tx: Some(tx), handle: Some(handle) }
    }

    /// Writes one item in whatever batch is being formed; returns once it is committed.
    pub(super) fn call(&self, item: T) -> Result<R, StoreError> {
        let (reply_tx, reply_rx) = bounded(1);
        let gone = || StoreError::Internal("a batch writer thread stopped".into());
        self.tx.as_ref().ok_or_else(gone)?.send((item, Some(reply_tx))).map_err(|_| gone())?;
        reply_rx.recv().map_err(|_| gone())?
    }

    /// Hands one item to the next batch without waiting for it to be written.
    pub(super) fn send(&self, item: T) -> Result<(), StoreError> {
        let gone = || StoreError::Internal("a batch writer thread stopped".into());
        self.tx.as_ref().ok_or_else(gone)?.send((item, None)).map_err(|_| gone())
    }
}

impl<T: Send + 'static, R: Send + 'static> Drop for Batcher<T, R> {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn copy_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
    }
}

fn run<T, R>(name: &str, pool: &PgPool, rx: &Receiver<(T, Option<Reply<R>>)>, max: usize, write: WriteBatch<T, R>) {
    let mut batch = Vec::with_capacity(max);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let items: Vec<&T> = batch.iter().map(|(t, _)| t).collect();
        let result = pool
            .get()
            .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
            .and_then(|mut conn| write(&mut conn, &items));
        let unanswered = batch.iter().filter(|(_, reply)| reply.is_none()).count();
        match result {
            Ok(answers) => {
                for ((_, reply), answer) in batch.drain(..).zip(answers) {
                    if let Some(reply) = reply {
                        let _ = reply.send(answer);
                    }
                }
            }
            Err(e) => {
                if unanswered > 0 {
                    tracing::error!(writer = name, lost = unanswered, error = %e, "a batch of writes failed");
                }
                for (_, reply) in batch.drain(..) {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(copy_err(&e)));
                    }
                }
            }
        }
    }
}
