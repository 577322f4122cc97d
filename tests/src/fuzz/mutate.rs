//! Malformed messages: mutations of a well-shaped request, on its arguments (wrong object
//! types, unknown or destroyed ids, nulls where the protocol forbids them, out-of-sequence new
//! ids, extreme numbers) or on its wire form (size field too small or too large, strings and
//! arrays running past the message, bad strings, missing or surplus fds, random bodies).
//!
//! Every mutation sends exactly as many bytes as the size field declares, so the stream stays
//! framed and a stall after it is the compositor's, not an artefact of the fuzzer. Framing
//! itself is attacked only at the end of a connection (see [`super::generator::Ending`]).

use wayland_client::backend::protocol::{AllowNull, ArgumentType, Interface, MessageDesc};

use super::catalog;
use super::rng::Rng;
use super::values;
use super::wire::{self, Arg, Encoded, HEADER, Request};
use super::world::{SERVER_ID_BASE, World};

/// One way to make a request malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// An object argument names a live object of another interface.
    WrongObjectType,
    /// An object argument names no live object.
    UnknownObject,
    /// A non-nullable string or object argument is null.
    NullNonNullable,
    /// A new_id is 0, in use, out of sequence or in the server's range.
    BadNewId,
    /// Every number is an extreme one.
    ExtremeNumbers,
    /// The message goes to an id that names no object.
    UnknownTarget,
    /// The message goes to an object destroyed earlier.
    UseAfterDestroy,
    /// The opcode is past the interface's requests.
    BadOpcode,
    /// A request newer than the object's version.
    TooNewRequest,
    /// The size field ends the message before its arguments do (only that much is sent).
    ArgsMissing,
    /// The size field covers extra bytes after the arguments.
    SurplusBytes,
    /// The message is larger than any buffer a compositor keeps (up to 64 KiB).
    HugeMessage,
    /// A string's or array's length runs past the message.
    LengthOverrun,
    /// A string without its NUL, with a NUL inside, or not UTF-8.
    BadString,
    /// The fds the signature asks for are not sent.
    MissingFds,
    /// More fds are sent than the signature asks for (a few, or a flood of up to 127).
    SurplusFds,
    /// The arguments are random bytes.
    RandomBody,
}

impl Mutation {
    /// Every mutation.
    pub const ALL: &'static [Mutation] = &[
        Mutation::WrongObjectType,
        Mutation::UnknownObject,
        Mutation::NullNonNullable,
        Mutation::BadNewId,
        Mutation::ExtremeNumbers,
        Mutation::UnknownTarget,
        Mutation::UseAfterDestroy,
        Mutation::BadOpcode,
        Mutation::TooNewRequest,
        Mutation::ArgsMissing,
        Mutation::SurplusBytes,
        Mutation::HugeMessage,
        Mutation::LengthOverrun,
        Mutation::BadString,
        Mutation::MissingFds,
        Mutation::SurplusFds,
        Mutation::RandomBody,
    ];

    /// A random mutation.
    pub fn random(rng: &mut Rng) -> Mutation {
        *rng.pick(Self::ALL).expect("non-empty")
    }
}

/// Positions of arguments whose type satisfies `want`.
fn positions(sig: &[ArgumentType], want: impl Fn(&ArgumentType) -> bool) -> Vec<usize> {
    (0..sig.len()).filter(|i| want(&sig[*i])).collect()
}

/// Applies `m` to the request before it is encoded; false if it does not apply to this one.
pub fn apply_to_request(
    m: Mutation,
    rng: &mut Rng,
    world: &World,
    req: &mut Request,
    desc: &MessageDesc,
    target: &Interface,
) -> bool {
    let sig = desc.signature;
    let pick = |rng: &mut Rng, want: &dyn Fn(&ArgumentType) -> bool| {
        rng.pick(&positions(sig, want)).copied()
    };
    match m {
        Mutation::WrongObjectType => {
            let Some(i) = pick(rng, &|t| matches!(t, ArgumentType::Object(_))) else {
                return false;
            };
            let expected = catalog::object_arg_interface(desc, i).map_or("", |x| x.name);
            match world.random_not_of(rng, expected) {
                Some(id) => req.args[i] = Arg::Object(id),
                None => return false,
            }
        }
        Mutation::UnknownObject => {
            let Some(i) = pick(rng, &|t| matches!(t, ArgumentType::Object(_))) else {
                return false;
            };
            req.args[i] = Arg::Object(world.unknown_id(rng));
        }
        Mutation::NullNonNullable => {
            let Some(i) = pick(rng, &|t| {
                matches!(
                    t,
                    ArgumentType::Str(AllowNull::No) | ArgumentType::Object(AllowNull::No)
                )
            }) else {
                return false;
            };
            req.args[i] = match sig[i] {
                ArgumentType::Str(_) => Arg::Str(None),
                _ => Arg::Object(0),
            };
        }
        Mutation::BadNewId => {
            let Some(i) = pick(rng, &|t| matches!(t, ArgumentType::NewId)) else {
                return false;
            };
            let live = world.random(rng).0;
            let id = *rng
                .pick(&[
                    0,
                    live,
                    world.peek_next_id() + 2,
                    SERVER_ID_BASE + 1,
                    u32::MAX,
                ])
                .expect("non-empty");
            req.args[i] = Arg::NewId(id);
        }
        Mutation::ExtremeNumbers => {
            let mut any = false;
            for arg in &mut req.args {
                match arg {
                    Arg::Int(v) | Arg::Fixed(v) => *v = values::extreme_int(rng),
                    Arg::Uint(v) => *v = values::extreme_uint(rng),
                    _ => continue,
                }
                any = true;
            }
            return any;
        }
        Mutation::UnknownTarget => req.object = world.unknown_id(rng),
        Mutation::UseAfterDestroy => match world.destroyed_id(rng) {
            Some(id) => req.object = id,
            None => return false,
        },
        Mutation::BadOpcode => {
            let count = target.requests.len() as u16;
            req.opcode = if rng.percent(80) {
                count + rng.below(4) as u16
            } else {
                u16::MAX
            };
        }
        _ => return false,
    }
    true
}

/// Applies `m` to the encoded message; false if it does not apply to this one.
pub fn apply_to_wire(
    m: Mutation,
    rng: &mut Rng,
    enc: &mut Encoded,
    sig: &[ArgumentType],
    pool_len: usize,
) -> bool {
    match m {
        Mutation::ArgsMissing => {
            let body = enc.bytes.len() - HEADER;
            if body == 0 {
                return false;
            }
            let keep = HEADER + rng.below(body);
            enc.bytes.truncate(keep);
            wire::set_size(&mut enc.bytes, keep as u16);
        }
        Mutation::SurplusBytes => {
            let extra = 1 + rng.below(64);
            let filler = rng.bytes(extra);
            grow_to(enc, enc.bytes.len() + extra, &filler);
        }
        Mutation::HugeMessage => {
            let size = *rng
                .pick(&[4096usize, 4100, 8192, 65532, 65535])
                .expect("non-empty");
            grow_to(enc, size, &[0]);
        }
        Mutation::LengthOverrun => {
            let Some(i) = rng
                .pick(&positions(sig, |t| {
                    matches!(t, ArgumentType::Str(_) | ArgumentType::Array)
                }))
                .copied()
            else {
                return false;
            };
            let at = enc.arg_offsets[i];
            let past = (enc.bytes.len() - at) as u32;
            let len = *rng
                .pick(&[past, past + 4, 0x7fff_ffff, u32::MAX, 0xffff_fff0])
                .expect("non-empty");
            wire::set_word(&mut enc.bytes, at, len);
        }
        Mutation::BadString => return bad_string(rng, enc, sig),
        Mutation::MissingFds => {
            if enc.fds.is_empty() {
                return false;
            }
            enc.fds.clear();
        }
        Mutation::SurplusFds => {
            // A few, or more than a compositor reads with one message (wayland-backend takes
            // 28 per recvmsg; the kernel drops what does not fit its control buffer).
            let n = if rng.percent(80) {
                1 + rng.below(4)
            } else {
                28 + rng.below(100)
            };
            for _ in 0..n {
                enc.fds.push(values::fd(rng, pool_len));
            }
        }
        Mutation::RandomBody => {
            let len = if rng.percent(70) {
                4 * rng.below(16)
            } else {
                rng.below(64)
            };
            enc.bytes.truncate(HEADER);
            let body = rng.bytes(len);
            enc.bytes.extend_from_slice(&body);
            let size = enc.bytes.len() as u16;
            wire::set_size(&mut enc.bytes, size);
        }
        _ => return false,
    }
    true
}

/// Pads the message with `filler` (repeated) to `size` bytes and declares that size.
fn grow_to(enc: &mut Encoded, size: usize, filler: &[u8]) {
    let size = size.min(0xffff);
    let mut i = 0;
    while enc.bytes.len() < size {
        enc.bytes.push(filler[i % filler.len()]);
        i += 1;
    }
    let len = enc.bytes.len() as u16;
    wire::set_size(&mut enc.bytes, len);
}

/// A string argument without its NUL, with a NUL inside, or with bytes that are not UTF-8.
fn bad_string(rng: &mut Rng, enc: &mut Encoded, sig: &[ArgumentType]) -> bool {
    let strings: Vec<usize> = positions(sig, |t| matches!(t, ArgumentType::Str(_)))
        .into_iter()
        .filter(|i| read_word(enc, enc.arg_offsets[*i]) >= 2)
        .collect();
    let Some(&i) = rng.pick(&strings) else {
        return false;
    };
    let at = enc.arg_offsets[i];
    let len = read_word(enc, at) as usize;
    let start = at + 4;
    match rng.below(3) {
        0 => enc.bytes[start + len - 1] = b'X',
        1 => enc.bytes[start + rng.below(len - 1)] = 0,
        _ => enc.bytes[start] = 0xff,
    }
    true
}

fn read_word(enc: &Encoded, at: usize) -> u32 {
    u32::from_ne_bytes(enc.bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::fds::FdRef;
    use wayland_client::backend::protocol::AllowNull;

    const SIG: &[ArgumentType] = &[
        ArgumentType::NewId,
        ArgumentType::Str(AllowNull::No),
        ArgumentType::Int,
        ArgumentType::Object(AllowNull::No),
        ArgumentType::Array,
        ArgumentType::Fd,
    ];

    fn sample() -> Encoded {
        wire::encode(&Request {
            object: 3,
            opcode: 1,
            args: vec![
                Arg::NewId(9),
                Arg::Str(Some(b"hello".to_vec())),
                Arg::Int(-5),
                Arg::Object(3),
                Arg::Array(vec![1, 2, 3]),
                Arg::Fd(FdRef::Pool(0)),
            ],
        })
    }

    /// Every wire mutation sends exactly the bytes its size field declares: the stream stays
    /// framed, so what follows is read as the next message.
    #[test]
    fn wire_mutations_keep_the_size_field_equal_to_the_bytes_sent() {
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            for m in Mutation::ALL {
                let mut enc = sample();
                if apply_to_wire(*m, &mut rng, &mut enc, SIG, 4) {
                    let h = wire::header(&enc.bytes).unwrap();
                    assert_eq!(h.size, enc.bytes.len(), "{m:?}");
                    assert_eq!((h.object, h.opcode), (3, 1), "{m:?}");
                }
            }
        }
    }

    #[test]
    fn fd_mutations_change_only_the_fds() {
        let mut rng = Rng::new(1);
        let mut enc = sample();
        assert!(apply_to_wire(
            Mutation::MissingFds,
            &mut rng,
            &mut enc,
            SIG,
            4
        ));
        assert!(enc.fds.is_empty());
        assert_eq!(enc.bytes, sample().bytes);
        assert!(!apply_to_wire(
            Mutation::MissingFds,
            &mut rng,
            &mut enc,
            SIG,
            4
        ));
        assert!(apply_to_wire(
            Mutation::SurplusFds,
            &mut rng,
            &mut enc,
            SIG,
            4
        ));
        assert!(!enc.fds.is_empty());
    }

    #[test]
    fn null_non_nullable_nulls_a_string_or_an_object() {
        let mut rng = Rng::new(2);
        let world = World::new();
        let desc = MessageDesc {
            name: "t",
            signature: SIG,
            since: 1,
            is_destructor: false,
            child_interface: None,
            arg_interfaces: &[],
        };
        let mut req = Request {
            object: 3,
            opcode: 1,
            args: vec![
                Arg::NewId(9),
                Arg::Str(Some(b"x".to_vec())),
                Arg::Int(0),
                Arg::Object(3),
                Arg::Array(vec![]),
                Arg::Fd(FdRef::Pool(0)),
            ],
        };
        let target = crate::fuzz::catalog::DISPLAY;
        assert!(apply_to_request(
            Mutation::NullNonNullable,
            &mut rng,
            &world,
            &mut req,
            &desc,
            target
        ));
        assert!(matches!(req.args[1], Arg::Str(None)) || matches!(req.args[3], Arg::Object(0)));
    }
}
