//! The few server calls the store makes, behind a trait: over gRPC to a real server
//! ([`Grpc`]), or, in this crate's tests, to [`Model`], a small in-process model of ESDB's
//! rules (0-based revisions, expected revisions, idempotent retries by event id, byte-offset
//! positions, prefix-filtered `$all`) that lets the conformance suite exercise the store's own
//! logic without a server. The model only says what we believe ESDB does; the real thing is
//! checked by `tests/esdb.rs` when `EVENTSTORE_URL` is set.

use async_trait::async_trait;
use kurrentdb::{
    AppendToStreamOptions, Client, EventData, Position, ReadAllOptions, ReadStreamOptions,
    StreamPosition, StreamState, SubscriptionFilter,
};
use uuid::Uuid;

/// A stored event as the server returns it.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub stream: String,
    pub revision: u64,
    pub position: Position,
    pub id: Uuid,
    pub event_type: String,
    pub data: Vec<u8>,
    pub metadata: Vec<u8>,
}

/// An event to write.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub id: Uuid,
    pub event_type: String,
    pub data: Vec<u8>,
    pub metadata: Vec<u8>,
}

/// Where a read starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum From<P> {
    /// Forwards from this revision or position (inclusive), or from the start.
    Forwards(StreamPosition<P>),
    /// Backwards from the end.
    Last,
}

#[async_trait]
pub(crate) trait Server: Send + Sync + 'static {
    /// Up to `count` events of stream `name`; empty when it does not exist.
    async fn read_stream(
        &self,
        name: &str,
        from: From<u64>,
        count: usize,
    ) -> Result<Vec<Raw>, kurrentdb::Error>;

    /// Up to `count` events of `$all` whose stream names start with `prefix`.
    async fn read_all(
        &self,
        prefix: &str,
        from: From<Position>,
        count: usize,
    ) -> Result<Vec<Raw>, kurrentdb::Error>;

    /// Appends to stream `name` if it is in `state`.
    async fn append(
        &self,
        name: &str,
        state: StreamState,
        events: Vec<Write>,
    ) -> Result<(), kurrentdb::Error>;
}

/// A real server.
pub(crate) struct Grpc(pub Client);

fn raw(e: kurrentdb::RecordedEvent) -> Raw {
    Raw {
        stream: e.stream_id().to_owned(),
        revision: e.revision,
        position: e.position,
        id: e.id,
        event_type: e.event_type,
        data: e.data.to_vec(),
        metadata: e.custom_metadata.to_vec(),
    }
}

async fn collect(
    mut read: kurrentdb::ReadStream,
    count: usize,
) -> Result<Vec<Raw>, kurrentdb::Error> {
    let mut out = Vec::new();
    while out.len() < count {
        match read.next().await {
            Ok(Some(event)) => {
                if let Some(e) = event.event {
                    out.push(raw(e));
                }
            }
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[async_trait]
impl Server for Grpc {
    async fn read_stream(
        &self,
        name: &str,
        from: From<u64>,
        count: usize,
    ) -> Result<Vec<Raw>, kurrentdb::Error> {
        let options = match from {
            From::Forwards(p) => ReadStreamOptions::default().position(p).forwards(),
            From::Last => ReadStreamOptions::default()
                .position(StreamPosition::End)
                .backwards(),
        }
        .max_count(count);
        match self.0.read_stream(name, &options).await {
            Ok(read) => collect(read, count).await,
            Err(kurrentdb::Error::ResourceNotFound) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn read_all(
        &self,
        prefix: &str,
        from: From<Position>,
        count: usize,
    ) -> Result<Vec<Raw>, kurrentdb::Error> {
        let options = match from {
            From::Forwards(p) => ReadAllOptions::default().position(p).forwards(),
            From::Last => ReadAllOptions::default()
                .position(StreamPosition::End)
                .backwards(),
        }
        .filter(SubscriptionFilter::on_stream_name().add_prefix(prefix))
        .max_count(count);
        collect(self.0.read_all(&options).await?, count).await
    }

    async fn append(
        &self,
        name: &str,
        state: StreamState,
        events: Vec<Write>,
    ) -> Result<(), kurrentdb::Error> {
        let data: Vec<EventData> = events
            .into_iter()
            .map(|w| {
                EventData::binary(w.event_type, bytes::Bytes::from(w.data))
                    .id(w.id)
                    .metadata(bytes::Bytes::from(w.metadata))
            })
            .collect();
        let options = AppendToStreamOptions::default().stream_state(state);
        self.0.append_to_stream(name, &options, data).await?;
        Ok(())
    }
}

/// ESDB's rules in memory, for tests (see the module header).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Model {
    log: std::sync::Mutex<Vec<Raw>>,
}

#[cfg(test)]
#[async_trait]
impl Server for Model {
    async fn read_stream(
        &self,
        name: &str,
        from: From<u64>,
        count: usize,
    ) -> Result<Vec<Raw>, kurrentdb::Error> {
        let log = self.log.lock().unwrap();
        let stream = log.iter().filter(|e| e.stream == name);
        Ok(match from {
            From::Forwards(StreamPosition::Position(r)) => stream
                .filter(|e| e.revision >= r)
                .take(count)
                .cloned()
                .collect(),
            From::Forwards(StreamPosition::Start) => stream.take(count).cloned().collect(),
            From::Forwards(StreamPosition::End) => Vec::new(),
            From::Last => {
                let mut all: Vec<Raw> = stream.cloned().collect();
                all.reverse();
                all.truncate(count);
                all
            }
        })
    }

    async fn read_all(
        &self,
        prefix: &str,
        from: From<Position>,
        count: usize,
    ) -> Result<Vec<Raw>, kurrentdb::Error> {
        let log = self.log.lock().unwrap();
        let ours = log.iter().filter(|e| e.stream.starts_with(prefix));
        let at = |p: Position| (p.commit, p.prepare);
        Ok(match from {
            From::Forwards(StreamPosition::Position(p)) => ours
                .filter(|e| at(e.position) >= at(p))
                .take(count)
                .cloned()
                .collect(),
            From::Forwards(StreamPosition::Start) => ours.take(count).cloned().collect(),
            From::Forwards(StreamPosition::End) => Vec::new(),
            From::Last => {
                let mut all: Vec<Raw> = ours.cloned().collect();
                all.reverse();
                all.truncate(count);
                all
            }
        })
    }

    async fn append(
        &self,
        name: &str,
        state: StreamState,
        events: Vec<Write>,
    ) -> Result<(), kurrentdb::Error> {
        use kurrentdb::CurrentRevision;
        let mut log = self.log.lock().unwrap();
        let stream: Vec<&Raw> = log.iter().filter(|e| e.stream == name).collect();
        let current = stream.last().map(|e| e.revision);
        // Idempotence: the same ids right after the expected revision are the same write.
        let after = match state {
            StreamState::StreamRevision(r) => Some(r + 1),
            StreamState::NoStream => Some(0),
            _ => stream
                .iter()
                .find(|e| Some(&e.id) == events.first().map(|w| &w.id))
                .map(|e| e.revision),
        };
        if let Some(start) = after {
            let written: Vec<Uuid> = stream
                .iter()
                .filter(|e| e.revision >= start)
                .take(events.len())
                .map(|e| e.id)
                .collect();
            if written.len() == events.len() && written.iter().zip(&events).all(|(a, w)| *a == w.id)
            {
                return Ok(());
            }
        }
        let ok = match state {
            StreamState::Any => true,
            StreamState::NoStream => current.is_none(),
            StreamState::StreamExists => current.is_some(),
            StreamState::StreamRevision(r) => current == Some(r),
        };
        if !ok {
            return Err(kurrentdb::Error::WrongExpectedVersion {
                expected: state,
                current: current.map_or(CurrentRevision::NoStream, CurrentRevision::Current),
            });
        }
        // Positions are byte offsets of the server's log: past the system records, and as far
        // apart as the records are long.
        let mut next = log.last().map_or(1_024, |e| {
            e.position.commit + 100 + e.data.len() as u64 + e.metadata.len() as u64
        });
        let first = current.map_or(0, |r| r + 1);
        for (revision, w) in (first..).zip(events) {
            let size = 100 + w.data.len() as u64 + w.metadata.len() as u64;
            log.push(Raw {
                stream: name.to_owned(),
                revision,
                position: Position {
                    commit: next,
                    prepare: next,
                },
                id: w.id,
                event_type: w.event_type,
                data: w.data,
                metadata: w.metadata,
            });
            next += size;
        }
        Ok(())
    }
}
