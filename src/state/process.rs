//! One raw message in, one outcome out: find the source from the topic, decode, apply the
//! event or count the rejection. Live ingestion (`pipeline`), replay of the event log
//! (`store::journal`) and the benches all go through [`State::process`], so they cannot
//! drift apart; what to do with a rejection beyond counting it (dead letter, log line) is
//! the caller's.

use crate::decode::action::decode_action;
use crate::decode::raw::Span;
use crate::decode::{DecodeError, DecodeLimits, Source, decode_with_spans, source_of};
use crate::time::Ts;

use super::{Input, Outcome, State};

/// A message as read off the wire or out of the log, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// The topic it was published on.
    pub topic: &'a str,
    /// The payload, unchecked.
    pub payload: &'a [u8],
    /// The daemon's clock when it was read off the connection: "now" for its decoding,
    /// live and in replay alike.
    pub received_at: Ts,
}

impl<'a> From<&'a crate::ingest::RawMessage> for Message<'a> {
    fn from(raw: &'a crate::ingest::RawMessage) -> Self {
        Message {
            topic: &raw.topic,
            payload: &raw.payload,
            received_at: raw.received_at,
        }
    }
}

/// What [`State::process`] did with a message.
#[derive(Debug)]
pub enum Processed {
    /// Its topic is not under one of the input sources: nothing changed.
    Ignored,
    /// Decoded and applied: [`Outcome::Applied`] or [`Outcome::Duplicate`].
    Applied(Outcome),
    /// An operator action on `{prefix}/ops/actions` that cannot be read; not counted
    /// per source (it is no source's): the caller counts and dead-letters it.
    ActionRejected(DecodeError),
    /// Refused and counted; the caller dead-letters it.
    Rejected {
        /// The source its topic names.
        source: Source,
        /// Why, with the contract's reason code.
        error: DecodeError,
    },
}

impl State {
    /// Decodes `msg` as of its arrival and applies it, or counts its rejection.
    pub fn process(&mut self, msg: Message<'_>, prefix: &str, limits: &DecodeLimits) -> Processed {
        self.process_with(msg, None, prefix, limits)
    }

    /// [`State::process`] of an event iocd wrote itself (a mapped record), with its
    /// members' places in the payload (`decode::decode_written`): the same outcome, without
    /// parsing the text it has just written.
    pub fn process_written(
        &mut self,
        msg: Message<'_>,
        spans: &[Span],
        prefix: &str,
        limits: &DecodeLimits,
    ) -> Processed {
        self.process_with(msg, Some(spans), prefix, limits)
    }

    fn process_with(
        &mut self,
        msg: Message<'_>,
        spans: Option<&[Span]>,
        prefix: &str,
        limits: &DecodeLimits,
    ) -> Processed {
        let Some(source) = source_of(msg.topic, prefix) else {
            if is_actions_topic(msg.topic, prefix) {
                return match decode_action(msg.payload, msg.received_at, limits) {
                    Ok(action) => {
                        Processed::Applied(self.apply(&Input::Action(action), msg.received_at))
                    }
                    Err(error) => Processed::ActionRejected(error),
                };
            }
            return Processed::Ignored;
        };
        match decode_with_spans(source, msg.payload, spans, msg.received_at, limits) {
            Ok(event) => Processed::Applied(self.apply(&Input::Event(event), msg.received_at)),
            Err(error) => {
                let input = Input::Rejected {
                    source,
                    reason: error.reason,
                };
                self.apply(&input, msg.received_at);
                Processed::Rejected { source, error }
            }
        }
    }
}

/// The topic level under the prefix where operator actions travel.
pub const ACTIONS_LEVEL: &str = "ops/actions";

/// Whether `topic` is `{prefix}/ops/actions`.
#[must_use]
pub fn is_actions_topic(topic: &str, prefix: &str) -> bool {
    topic
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        == Some(ACTIONS_LEVEL)
}
