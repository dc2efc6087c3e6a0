//! Small writes arriving concurrently, made with one statement and one commit.
//!
//! An API write (a create, an audit entry) is a small insert whose cost is dominated by its
//! commit (a WAL flush). A batcher thread takes every item waiting at that moment (up to a
//! limit), writes them together, and answers each caller once the batch is committed: under
//! load many writes share one commit; alone, a write waits for nothing but a thread hop. An
//! item may also be handed over without waiting ([`Batcher::send`]); its failure is logged,
//! and [`Batcher::flush`] waits until everything handed over before it is written.

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use diesel::pg::PgConnection;

use super::PgPool;
use crate::store::StoreError;

/// Writes a batch; one answer per item, in order (or one error for the whole batch).
pub(super) type WriteBatch<T, R> = fn(&mut PgConnection, &[&T]) -> Result<Vec<Result<R, StoreError>>, StoreError>;

type Reply<R> = Sender<Result<R, StoreError>>;

enum Msg<T, R> {
    /// An item, with where to answer (none: handed over without waiting).
    Item(T, Option<Reply<R>>),
    /// Answered once every item sent before it is written.
    Flush(Sender<()>),
}

/// The handle callers use; the thread ends when it is dropped.
pub(super) struct Batcher<T: Send + 'static, R: Send + 'static> {
    tx: Option<Sender<Msg<T, R>>>,
    handle: Option<JoinHandle<()>>,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the thread `name`, writing up to `max` items at a time with `write`.
    pub(super) fn start(name: &str, max: usize, pool: PgPool, write: WriteBatch<T, R>) -> Batcher<T, R> {
        let (tx, rx) = unbounded::<Msg<T, R>>();
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
        self.tx.as_ref().ok_or_else(gone)?.send(Msg::Item(item, Some(reply_tx))).map_err(|_| gone())?;
        reply_rx.recv().map_err(|_| gone())?
    }

    /// Hands one item to the next batch without waiting for it to be written.
    pub(super) fn send(&self, item: T) -> Result<(), StoreError> {
        self.tx.as_ref().ok_or_else(gone)?.send(Msg::Item(item, None)).map_err(|_| gone())
    }

    /// Waits until every item handed over so far has been written (or has failed, logged).
    pub(super) fn flush(&self) {
        let (done_tx, done_rx) = bounded(1);
        if let Some(tx) = &self.tx {
            if tx.send(Msg::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
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

fn gone() -> StoreError {
    StoreError::Internal("a batch writer thread stopped".into())
}

fn copy_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
    }
}

fn run<T, R>(name: &str, pool: &PgPool, rx: &Receiver<Msg<T, R>>, max: usize, write: WriteBatch<T, R>) {
    let mut batch: Vec<(T, Option<Reply<R>>)> = Vec::with_capacity(max);
    let mut flushes = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        // Take what is waiting, up to a batch; a flush ends the batch (it answers after it).
        while let Some(msg) = next.take() {
            match msg {
                Msg::Item(t, reply) => batch.push((t, reply)),
                Msg::Flush(done) => {
                    flushes.push(done);
                    break;
                }
            }
            if batch.len() < max {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            write_batch(name, pool, &mut batch, write);
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

fn write_batch<T, R>(name: &str, pool: &PgPool, batch: &mut Vec<(T, Option<Reply<R>>)>, write: WriteBatch<T, R>) {
    let attempt = |items: &[&T]| {
        pool.get()
            .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
            .and_then(|mut conn| write(&mut conn, items))
    };
    let items: Vec<&T> = batch.iter().map(|(t, _)| t).collect();
    let answers: Vec<Result<R, StoreError>> = match attempt(&items) {
        Ok(answers) => answers,
        // A statement error may be one item's fault: write them one by one, so the others
        // are kept. An unreachable database fails them all at once.
        Err(StoreError::Internal(_)) if items.len() > 1 => items
            .iter()
            .map(|t| {
                attempt(std::slice::from_ref(t))
                    .and_then(|mut a| a.pop().unwrap_or(Err(StoreError::Internal("no answer for an item".into()))))
            })
            .collect(),
        Err(e) => items.iter().map(|_| Err(copy_err(&e))).collect(),
    };
    drop(items);
    let mut lost = 0;
    let mut last_error = None;
    for ((_, reply), answer) in batch.drain(..).zip(answers) {
        match reply {
            Some(reply) => {
                let _ = reply.send(answer);
            }
            None => {
                if let Err(e) = answer {
                    lost += 1;
                    last_error = Some(e);
                }
            }
        }
    }
    if let Some(e) = last_error {
        tracing::error!(writer = name, lost, error = %e, "writes handed over without waiting failed");
    }
}
