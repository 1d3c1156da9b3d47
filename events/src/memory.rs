//! An in-memory log for tests: the same rules as the durable backends, nothing on disk.

use crate::envelope::{GENESIS, NewEvent, Recorded, seal};
use crate::store::{Error, Expected, Store};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// A [`Store`] held in memory.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    head: watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    log: Vec<Recorded>,
    streams: HashMap<String, Vec<usize>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty log.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            head: watch::channel(0).0,
        }
    }
}

pub(crate) fn check_expected(
    stream: &str,
    expected: Expected,
    actual: Option<u64>,
) -> Result<(), Error> {
    let ok = match expected {
        Expected::Any => true,
        Expected::NoStream => actual.is_none(),
        Expected::Exact(v) => actual == Some(v),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Conflict {
            stream: stream.to_owned(),
            expected,
            actual,
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn append(
        &self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Recorded>, Error> {
        if events.is_empty() {
            return Err(Error::Empty);
        }
        let mut inner = self.inner.lock().expect("memory store lock");
        let indexes = inner.streams.get(stream);
        let (actual, previous) = match indexes.and_then(|v| v.last()) {
            Some(&i) => (Some(inner.log[i].version), inner.log[i].hash),
            None => (None, GENESIS),
        };
        check_expected(stream, expected, actual)?;
        let mut out = seal(stream, actual.map(|v| (v, previous)), &events);
        for rec in &mut out {
            let index = inner.log.len();
            rec.position = index as u64 + 1;
            inner
                .streams
                .entry(stream.to_owned())
                .or_default()
                .push(index);
            inner.log.push(rec.clone());
        }
        let head = inner.log.len() as u64;
        drop(inner);
        self.head.send_replace(head);
        Ok(out)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Recorded>, Error> {
        let inner = self.inner.lock().expect("memory store lock");
        let Some(indexes) = inner.streams.get(stream) else {
            return Ok(Vec::new());
        };
        let skip = from_version.saturating_sub(1) as usize;
        Ok(indexes
            .iter()
            .skip(skip)
            .take(limit)
            .map(|&i| inner.log[i].clone())
            .collect())
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, Error> {
        let inner = self.inner.lock().expect("memory store lock");
        Ok(inner
            .log
            .iter()
            .skip(after as usize)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        let inner = self.inner.lock().expect("memory store lock");
        Ok(inner
            .streams
            .get(stream)
            .and_then(|v| v.last())
            .map(|&i| inner.log[i].version))
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}
