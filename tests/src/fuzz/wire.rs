//! The Wayland wire format, by hand: a message is a header (object id; size << 16 | opcode) and
//! 32-bit aligned arguments in native byte order; strings and arrays carry their length (a
//! string's includes its NUL; 0 is a null string); fds travel beside the bytes (SCM_RIGHTS).

use std::fmt::Write as _;

use wayland_client::backend::protocol::ArgumentType;

use super::fds::FdRef;

/// Bytes in a message header.
pub const HEADER: usize = 8;

/// One argument of a request, as the fuzzer means to send it.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `int`.
    Int(i32),
    /// `uint` (also enums and bitfields).
    Uint(u32),
    /// `fixed` (24.8), raw.
    Fixed(i32),
    /// `string`: its bytes without the NUL; `None` is a null string.
    Str(Option<Vec<u8>>),
    /// `object`: an id (0 is null).
    Object(u32),
    /// `new_id`.
    NewId(u32),
    /// `array`.
    Array(Vec<u8>),
    /// `fd`: which fd to send.
    Fd(FdRef),
}

/// A request: object, opcode and arguments.
#[derive(Debug, Clone)]
pub struct Request {
    /// The object it is sent to.
    pub object: u32,
    /// The request's index in its interface.
    pub opcode: u16,
    /// Its arguments, in signature order.
    pub args: Vec<Arg>,
}

/// A request in wire form.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Header and body.
    pub bytes: Vec<u8>,
    /// The fds to send with it, in order.
    pub fds: Vec<FdRef>,
    /// Where each argument starts in `bytes` (an fd: where it would be).
    pub arg_offsets: Vec<usize>,
}

fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

/// Length word, bytes, zero padding to 4.
fn push_blob(out: &mut Vec<u8>, len_word: u32, bytes: &[u8]) {
    push_u32(out, len_word);
    out.extend_from_slice(bytes);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// The wire form of `req`, with its size field set to its true length (which may exceed what
/// the 16-bit field holds: the caller decides whether that is the point).
pub fn encode(req: &Request) -> Encoded {
    let mut bytes = Vec::with_capacity(64);
    push_u32(&mut bytes, req.object);
    push_u32(&mut bytes, u32::from(req.opcode));
    let mut fds = Vec::new();
    let mut arg_offsets = Vec::with_capacity(req.args.len());
    for arg in &req.args {
        arg_offsets.push(bytes.len());
        match arg {
            Arg::Int(v) | Arg::Fixed(v) => push_u32(&mut bytes, *v as u32),
            Arg::Uint(v) | Arg::Object(v) | Arg::NewId(v) => push_u32(&mut bytes, *v),
            Arg::Str(None) => push_u32(&mut bytes, 0),
            Arg::Str(Some(s)) => {
                let mut with_nul = s.clone();
                with_nul.push(0);
                push_blob(&mut bytes, with_nul.len() as u32, &with_nul);
            }
            Arg::Array(a) => push_blob(&mut bytes, a.len() as u32, a),
            Arg::Fd(f) => fds.push(*f),
        }
    }
    let size = bytes.len().min(0xffff) as u16;
    set_size(&mut bytes, size);
    Encoded {
        bytes,
        fds,
        arg_offsets,
    }
}

/// Writes `size` into the header's size field (the opcode stays).
pub fn set_size(bytes: &mut [u8], size: u16) {
    let word = u32::from_ne_bytes(bytes[4..8].try_into().expect("a header"));
    let word = (u32::from(size) << 16) | (word & 0xffff);
    bytes[4..8].copy_from_slice(&word.to_ne_bytes());
}

/// Overwrites the 32-bit word at `offset`.
pub fn set_word(bytes: &mut [u8], offset: usize, v: u32) {
    bytes[offset..offset + 4].copy_from_slice(&v.to_ne_bytes());
}

/// A message header read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The sender (events) or target (requests).
    pub object: u32,
    /// The opcode.
    pub opcode: u16,
    /// The whole message's length in bytes.
    pub size: usize,
}

/// The header at the start of `bytes`, if 8 bytes are there.
pub fn header(bytes: &[u8]) -> Option<Header> {
    let object = u32::from_ne_bytes(bytes.get(0..4)?.try_into().ok()?);
    let word = u32::from_ne_bytes(bytes.get(4..8)?.try_into().ok()?);
    Some(Header {
        object,
        opcode: (word & 0xffff) as u16,
        size: (word >> 16) as usize,
    })
}

/// One argument of an event, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `int` or `fixed`.
    Int(i32),
    /// `uint`.
    Uint(u32),
    /// `string` (without its NUL), or null.
    Str(Option<Vec<u8>>),
    /// `object`.
    Object(u32),
    /// `new_id`: an object the server created.
    NewId(u32),
    /// `array`.
    Array(Vec<u8>),
    /// `fd` (the fd itself came beside the bytes and is closed already).
    Fd,
}

/// Decodes `body` (a message without its header) by `signature`; `None` if it does not fit.
pub fn decode(signature: &[ArgumentType], body: &[u8]) -> Option<Vec<Value>> {
    let mut at = 0usize;
    let word = |at: &mut usize| -> Option<u32> {
        let v = u32::from_ne_bytes(body.get(*at..*at + 4)?.try_into().ok()?);
        *at += 4;
        Some(v)
    };
    let mut out = Vec::with_capacity(signature.len());
    for arg in signature {
        let v = match arg {
            ArgumentType::Int | ArgumentType::Fixed => Value::Int(word(&mut at)? as i32),
            ArgumentType::Uint => Value::Uint(word(&mut at)?),
            ArgumentType::Object(_) => Value::Object(word(&mut at)?),
            ArgumentType::NewId => Value::NewId(word(&mut at)?),
            ArgumentType::Fd => Value::Fd,
            ArgumentType::Str(_) | ArgumentType::Array => {
                let len = word(&mut at)? as usize;
                let bytes = body.get(at..at.checked_add(len)?)?.to_vec();
                at += len.next_multiple_of(4);
                match arg {
                    ArgumentType::Array => Value::Array(bytes),
                    _ if len == 0 => Value::Str(None),
                    _ => Value::Str(Some(bytes[..len - 1].to_vec())),
                }
            }
        };
        out.push(v);
    }
    Some(out)
}

/// `bytes` as a short printable string for logs.
pub fn printable(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(48) {
        if b.is_ascii_graphic() || b == b' ' {
            s.push(b as char);
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    if bytes.len() > 48 {
        let _ = write!(s, "...({} bytes)", bytes.len());
    }
    s
}

/// An argument for the message log.
pub fn describe_arg(arg: &Arg) -> String {
    match arg {
        Arg::Int(v) => v.to_string(),
        Arg::Uint(v) => format!("{v}u"),
        Arg::Fixed(v) => format!("{:.3}f", f64::from(*v) / 256.0),
        Arg::Str(None) => "null-string".to_owned(),
        Arg::Str(Some(s)) => format!("{:?}", printable(s)),
        Arg::Object(0) => "null".to_owned(),
        Arg::Object(id) => format!("@{id}"),
        Arg::NewId(id) => format!("new@{id}"),
        Arg::Array(a) => format!("array[{}]", a.len()),
        Arg::Fd(f) => format!("fd:{f}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wayland_client::backend::protocol::AllowNull;

    #[test]
    fn strings_and_arrays_round_trip_with_padding() {
        let req = Request {
            object: 5,
            opcode: 2,
            args: vec![
                Arg::Uint(7),
                Arg::Str(Some(b"abc".to_vec())),
                Arg::Array(vec![1, 2, 3, 4, 5]),
                Arg::Str(None),
                Arg::Int(-1),
            ],
        };
        let e = encode(&req);
        let h = header(&e.bytes).unwrap();
        assert_eq!((h.object, h.opcode, h.size), (5, 2, e.bytes.len()));
        assert_eq!(e.bytes.len() % 4, 0);
        assert_eq!(e.arg_offsets, vec![8, 12, 20, 32, 36]);
        let sig = [
            ArgumentType::Uint,
            ArgumentType::Str(AllowNull::No),
            ArgumentType::Array,
            ArgumentType::Str(AllowNull::Yes),
            ArgumentType::Int,
        ];
        let v = decode(&sig, &e.bytes[HEADER..]).unwrap();
        assert_eq!(
            v,
            vec![
                Value::Uint(7),
                Value::Str(Some(b"abc".to_vec())),
                Value::Array(vec![1, 2, 3, 4, 5]),
                Value::Str(None),
                Value::Int(-1),
            ]
        );
        assert!(decode(&sig, &e.bytes[HEADER..20]).is_none());
    }

    #[test]
    fn set_size_keeps_the_opcode() {
        let mut e = encode(&Request {
            object: 1,
            opcode: 3,
            args: vec![],
        });
        set_size(&mut e.bytes, 4);
        let h = header(&e.bytes).unwrap();
        assert_eq!((h.opcode, h.size), (3, 4));
    }
}
