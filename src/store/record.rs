//! The records iocd writes to the event log.
//!
//! ```text
//! Message = 0x01 | received_at_ns: i64 LE | topic_len: u32 LE | topic (UTF-8)
//!                | payload_len: u32 LE | payload
//! Tick    = 0x02 | at_ns: i64 LE
//! Alert   = 0x03 | since_ns: i64 LE (i64::MIN: resolved) | id_len: u32 LE | id
//! Refused = 0x04 | received_at_ns: i64 LE | source: u8 | reason: u8
//! ```
//!
//! Nothing may follow a record's last field. A new kind of record takes a new kind byte;
//! an old iocd refuses it rather than misreading it.

use std::borrow::Cow;

use super::StoreError;

const KIND_MESSAGE: u8 = 1;
const KIND_TICK: u8 = 2;
const KIND_ALERT: u8 = 3;
const KIND_REFUSED: u8 = 4;

/// One entry of the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// An MQTT message as received: replay re-decodes it with `received_at` as "now", which
    /// makes replay deterministic.
    Message {
        /// When iocd received it, in nanoseconds since the Unix epoch.
        received_at_ns: i64,
        /// The MQTT topic.
        topic: Cow<'a, str>,
        /// The payload, as received.
        payload: Cow<'a, [u8]>,
    },
    /// A housekeeping/alert-evaluation tick at this instant.
    Tick {
        /// The tick's instant, in nanoseconds since the Unix epoch.
        at_ns: i64,
    },
    /// A payload refused before it became contract events (a mapped input its mapping
    /// could not map): replay counts the rejection again without the mapping, whose file
    /// may have changed since. Mapped payloads that do map are logged as the contract
    /// events they became ([`Record::Message`]).
    Refused {
        /// When iocd received it, in nanoseconds since the Unix epoch.
        received_at_ns: i64,
        /// The source it was for ([`crate::decode::Source::index`]).
        source: u8,
        /// Why ([`crate::decode::Reason::index`]).
        reason: u8,
    },
    /// An alert started firing (`since_ns`) or resolved (`since_ns = None`): replay restores
    /// the `since` of the alerts firing at the crash.
    Alert {
        /// The alert id, `{rule}:{subject}`.
        id: Cow<'a, str>,
        /// When it started firing, in nanoseconds since the Unix epoch; `None` when resolved.
        since_ns: Option<i64>,
    },
}

impl Record<'_> {
    /// Appends the record's encoding to `out`.
    ///
    /// Topics and payloads are bounded far below 4 GiB by MQTT (64 KiB and 256 MiB); a
    /// longer one would be written with a wrong length and fail to decode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::Message {
                received_at_ns,
                topic,
                payload,
            } => {
                out.reserve(17 + topic.len() + payload.len());
                out.push(KIND_MESSAGE);
                out.extend_from_slice(&received_at_ns.to_le_bytes());
                put_bytes(out, topic.as_bytes());
                put_bytes(out, payload);
            }
            Record::Tick { at_ns } => {
                out.push(KIND_TICK);
                out.extend_from_slice(&at_ns.to_le_bytes());
            }
            Record::Refused {
                received_at_ns,
                source,
                reason,
            } => {
                out.push(KIND_REFUSED);
                out.extend_from_slice(&received_at_ns.to_le_bytes());
                out.push(*source);
                out.push(*reason);
            }
            Record::Alert { id, since_ns } => {
                out.push(KIND_ALERT);
                // i64::MIN is never a `since` (it is 1677), so it marks "resolved".
                out.extend_from_slice(&since_ns.unwrap_or(i64::MIN).to_le_bytes());
                put_bytes(out, id.as_bytes());
            }
        }
    }

    /// Decodes a record, borrowing its topic and payload from `bytes`.
    ///
    /// # Errors
    ///
    /// [`StoreError::CorruptRecord`] for an unknown kind, a field cut short, a topic that is
    /// not UTF-8, or bytes left over after the record.
    pub fn decode(bytes: &[u8]) -> Result<Record<'_>, StoreError> {
        let mut r = Reader(bytes);
        let record = match r.u8()? {
            KIND_MESSAGE => Record::Message {
                received_at_ns: r.i64()?,
                topic: Cow::Borrowed(r.str()?),
                payload: Cow::Borrowed(r.prefixed()?),
            },
            KIND_TICK => Record::Tick { at_ns: r.i64()? },
            KIND_REFUSED => Record::Refused {
                received_at_ns: r.i64()?,
                source: r.u8()?,
                reason: r.u8()?,
            },
            KIND_ALERT => {
                let since = r.i64()?;
                Record::Alert {
                    since_ns: (since != i64::MIN).then_some(since),
                    id: Cow::Borrowed(r.str()?),
                }
            }
            _ => return Err(StoreError::CorruptRecord("unknown record kind")),
        };
        if r.0.is_empty() {
            Ok(record)
        } else {
            Err(StoreError::CorruptRecord(
                "bytes left over after the record",
            ))
        }
    }

    /// The same record, owning its topic and payload.
    #[must_use]
    pub fn into_owned(self) -> Record<'static> {
        match self {
            Record::Message {
                received_at_ns,
                topic,
                payload,
            } => Record::Message {
                received_at_ns,
                topic: Cow::Owned(topic.into_owned()),
                payload: Cow::Owned(payload.into_owned()),
            },
            Record::Tick { at_ns } => Record::Tick { at_ns },
            Record::Refused {
                received_at_ns,
                source,
                reason,
            } => Record::Refused {
                received_at_ns,
                source,
                reason,
            },
            Record::Alert { id, since_ns } => Record::Alert {
                id: Cow::Owned(id.into_owned()),
                since_ns,
            },
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A cursor over a record's bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(StoreError::CorruptRecord("record cut short"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take::<1>()?[0])
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(i64::from_le_bytes(self.take()?))
    }

    fn prefixed(&mut self) -> Result<&'a [u8], StoreError> {
        let len = u32::from_le_bytes(self.take()?) as usize;
        if len > self.0.len() {
            return Err(StoreError::CorruptRecord("field longer than the record"));
        }
        let (field, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(field)
    }

    fn str(&mut self) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.prefixed()?)
            .map_err(|_| StoreError::CorruptRecord("topic is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Record<'static> {
        Record::Message {
            received_at_ns: -1_234_567_890_123,
            topic: Cow::Borrowed("ioc/v1/onestop/dossier"),
            payload: Cow::Borrowed(br#"{"event_id":"e-1"}"#),
        }
    }

    #[test]
    fn records_round_trip_through_encode_and_decode() {
        let refused = Record::Refused {
            received_at_ns: 1_765_000_000_000_000_000,
            source: 0,
            reason: 9,
        };
        let alert = Record::Alert {
            id: Cow::Borrowed("dossier_overdue:000.00.19.H42"),
            since_ns: Some(7),
        };
        for record in [message(), Record::Tick { at_ns: i64::MAX }, refused, alert] {
            let mut bytes = Vec::new();
            record.encode(&mut bytes);
            assert_eq!(Record::decode(&bytes).unwrap(), record);
        }
    }

    #[test]
    fn decode_borrows_the_topic_and_payload() {
        let mut bytes = Vec::new();
        message().encode(&mut bytes);
        let Record::Message { topic, payload, .. } = Record::decode(&bytes).unwrap() else {
            panic!("not a message");
        };
        assert!(matches!(topic, Cow::Borrowed(_)));
        assert!(matches!(payload, Cow::Borrowed(_)));
    }

    #[test]
    fn an_empty_topic_and_payload_round_trip() {
        let record = Record::Message {
            received_at_ns: 0,
            topic: Cow::Borrowed(""),
            payload: Cow::Borrowed(b""),
        };
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        assert_eq!(bytes.len(), 17);
        assert_eq!(Record::decode(&bytes).unwrap().into_owned(), record);
    }

    #[test]
    fn garbage_does_not_decode() {
        let mut good = Vec::new();
        message().encode(&mut good);
        let mut not_utf8 = good.clone();
        not_utf8[13] = 0xff;
        let mut trailing = good.clone();
        trailing.push(0);
        let mut huge_len = good.clone();
        huge_len[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        let cases: [&[u8]; 7] = [
            b"",
            &[9, 0, 0, 0, 0, 0, 0, 0, 0],
            &[KIND_TICK, 1, 2, 3],
            &good[..good.len() - 1],
            &not_utf8,
            &trailing,
            &huge_len,
        ];
        for bytes in cases {
            assert!(
                matches!(Record::decode(bytes), Err(StoreError::CorruptRecord(_))),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn every_prefix_of_a_record_is_rejected() {
        let mut good = Vec::new();
        message().encode(&mut good);
        for cut in 0..good.len() {
            assert!(Record::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
    }
}
