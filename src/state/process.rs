//! One raw message in, one outcome out: find the source from the topic, decode, apply the
//! event or count the rejection. Contract messages off the broker (`pipeline`) and the
//! replay of the event log (`store::journal`) go a group at a time ([`State::process_all`]);
//! mapped events, HTTP pushes and operator actions from the API one at a time
//! ([`State::process`], [`State::process_written`]). Both entries take the same two steps,
//! decode then apply, so they cannot drift apart (a property test holds them to the same
//! outcomes and state); what to do with a rejection beyond counting it (dead letter, log
//! line) is the caller's.

use arrayvec::ArrayVec;

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
        self.take(Step::decode(msg, None, prefix, limits))
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
        self.take(Step::decode(msg, Some(spans), prefix, limits))
    }

    /// [`State::process`] of each message of `msgs`, in order, each outcome pushed onto
    /// `out`: the same outcomes and the same state as one call per message.
    ///
    /// Why a group at a time: in a large state most of an event's cost is waiting for
    /// memory (its dedupe slot, its dossier), and one event's lookups depend on each other.
    /// Up to [`GROUP`] messages are decoded first, then their lookups are made back to
    /// back, without changing anything (`State::prefetch`), so that their cache misses
    /// overlap; applying them in order then finds the lines in cache.
    pub fn process_all<'m>(
        &mut self,
        msgs: impl IntoIterator<Item = Message<'m>>,
        prefix: &str,
        limits: &DecodeLimits,
        out: &mut Vec<Processed>,
    ) {
        let mut msgs = msgs.into_iter().peekable();
        let mut group: ArrayVec<Step<'m>, GROUP> = ArrayVec::new();
        while msgs.peek().is_some() {
            group.extend(
                msgs.by_ref()
                    .take(GROUP)
                    .map(|msg| Step::decode(msg, None, prefix, limits)),
            );
            self.prefetch(group.iter().filter_map(|step| match step {
                Step::Event(event, _) => Some(event),
                _ => None,
            }));
            for step in group.drain(..) {
                out.push(self.take(step));
            }
        }
    }

    /// Applies a decoded message, or counts its rejection.
    fn take(&mut self, step: Step<'_>) -> Processed {
        match step {
            Step::Event(event, at) => Processed::Applied(self.apply(&Input::Event(event), at)),
            Step::Rejected(source, error, at) => {
                self.apply(
                    &Input::Rejected {
                        source,
                        reason: error.reason,
                    },
                    at,
                );
                Processed::Rejected { source, error }
            }
            Step::Action(action, at) => Processed::Applied(self.apply(&Input::Action(action), at)),
            Step::ActionRejected(error) => Processed::ActionRejected(error),
            Step::Ignored => Processed::Ignored,
        }
    }
}

/// Messages [`State::process_all`] decodes before applying any of them.
pub const GROUP: usize = 16;

/// A message decoded, not applied yet, with its arrival.
enum Step<'m> {
    Event(crate::decode::Event<'m>, Ts),
    Rejected(Source, DecodeError, Ts),
    Action(crate::decode::action::Action, Ts),
    ActionRejected(DecodeError),
    Ignored,
}

impl<'m> Step<'m> {
    /// Finds the source from the topic and decodes the payload (an operator action on
    /// `{prefix}/ops/actions`); nothing is applied.
    fn decode(
        msg: Message<'m>,
        spans: Option<&[Span]>,
        prefix: &str,
        limits: &DecodeLimits,
    ) -> Self {
        let at = msg.received_at;
        let Some(source) = source_of(msg.topic, prefix) else {
            if is_actions_topic(msg.topic, prefix) {
                return match decode_action(msg.payload, at, limits) {
                    Ok(action) => Step::Action(action, at),
                    Err(error) => Step::ActionRejected(error),
                };
            }
            return Step::Ignored;
        };
        match decode_with_spans(source, msg.payload, spans, at, limits) {
            Ok(event) => Step::Event(event, at),
            Err(error) => Step::Rejected(source, error, at),
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
