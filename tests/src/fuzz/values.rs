//! Argument values: mostly ones a compositor must handle (small sizes, formats, serials it sent),
//! and often the ones that break arithmetic (0, -1, i32::MIN, u32::MAX, powers of two).

use super::fds::FdRef;
use super::rng::Rng;
use super::world::World;

const fn fourcc(c: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*c)
}

/// DRM fourccs and wl_shm's two own codes: what `format` arguments are made of.
pub const FORMATS: &[u32] = &[
    0, // wl_shm ARGB8888
    1, // wl_shm XRGB8888
    fourcc(b"XR24"),
    fourcc(b"AR24"),
    fourcc(b"XB24"),
    fourcc(b"AB24"),
    fourcc(b"RG16"),
    fourcc(b"NV12"),
    fourcc(b"YUYV"),
    fourcc(b"R8  "),
    fourcc(b"XR30"),
    0xffff_ffff,
];

/// XRGB8888 as a DRM fourcc.
pub const XRGB8888: u32 = fourcc(b"XR24");

const SMALL_INTS: &[i32] = &[
    1, 2, 4, 8, 16, 32, 64, 100, 128, 255, 256, 512, 1024, 4096, 8192, 16384, 65535, 65536, -1, -2,
    -64, -4096,
];

const EXTREME_INTS: &[i32] = &[
    i32::MIN,
    i32::MAX,
    i32::MIN + 1,
    i32::MAX - 1,
    0x7fff,
    0x8000,
    -0x8000,
    0x1_0000,
    1 << 24,
    -(1 << 24),
    1 << 30,
];

const EXTREME_UINTS: &[u32] = &[
    u32::MAX,
    0x8000_0000,
    0x7fff_ffff,
    0xffff,
    0x1_0000,
    u32::MAX - 1,
];

const STRINGS: &[&str] = &[
    "",
    "a",
    "fuzz",
    "wl_surface",
    "xdg_wm_base",
    "system",
    "linux,cma",
    "reserved",
    "../../../../dev/mem",
    "/dev/dma_heap/system",
    "%s%s%s%n",
    "\u{1f600}\u{202e}",
];

/// An `int`; `gentle`: a small non-negative one (sizes and positions that make sense).
pub fn int(rng: &mut Rng, gentle: bool) -> i32 {
    if gentle {
        return if rng.percent(80) {
            rng.range(0, 64) as i32
        } else {
            (*rng.pick(SMALL_INTS).expect("non-empty")).max(0)
        };
    }
    match rng.weighted(&[50, 25, 10, 15]) {
        0 => rng.range(0, 64) as i32,
        1 => *rng.pick(SMALL_INTS).expect("non-empty"),
        2 => *rng.pick(EXTREME_INTS).expect("non-empty"),
        _ => rng.next_u32() as i32,
    }
}

/// An extreme `int` (overflow bait).
pub fn extreme_int(rng: &mut Rng) -> i32 {
    *rng.pick(EXTREME_INTS).expect("non-empty")
}

/// An extreme `uint`.
pub fn extreme_uint(rng: &mut Rng) -> u32 {
    *rng.pick(EXTREME_UINTS).expect("non-empty")
}

/// A `uint`: small enum values, formats, bits, serials the compositor sent, extremes (not when
/// `gentle`).
pub fn uint(rng: &mut Rng, world: &World, gentle: bool) -> u32 {
    let weights = if gentle {
        [50, 15, 25, 10, 0, 0]
    } else {
        [35, 15, 15, 10, 10, 15]
    };
    match rng.weighted(&weights) {
        0 => rng.below(16) as u32,
        1 if gentle => *rng.pick(&FORMATS[..4]).expect("non-empty"),
        1 => *rng.pick(FORMATS).expect("non-empty"),
        2 => world.recent_uint(rng).unwrap_or(0),
        3 => 1 << rng.below(32),
        4 => extreme_uint(rng),
        _ => rng.next_u32(),
    }
}

/// A `fixed` (24.8), raw.
pub fn fixed(rng: &mut Rng, gentle: bool) -> i32 {
    if gentle || rng.percent(80) {
        int(rng, gentle).wrapping_mul(256)
    } else {
        rng.next_u32() as i32
    }
}

/// A `string`'s bytes (no NUL: the encoder adds it).
pub fn string(rng: &mut Rng, gentle: bool) -> Vec<u8> {
    let weights = if gentle { [100, 0, 0] } else { [70, 10, 20] };
    match rng.weighted(&weights) {
        0 => rng.pick(STRINGS).expect("non-empty").as_bytes().to_vec(),
        1 => vec![b'A'; 200 + rng.below(2000)],
        _ => {
            let len = 1 + rng.below(40);
            rng.bytes(len).into_iter().map(|b| b.max(1)).collect()
        }
    }
}

/// An `array`'s bytes.
pub fn array(rng: &mut Rng) -> Vec<u8> {
    let len = if rng.percent(70) {
        4 * rng.below(12)
    } else {
        rng.below(48)
    };
    rng.bytes(len)
}

/// Which fd to pass: any of the pool, this connection's memfd, or its own socket.
pub fn fd(rng: &mut Rng, pool_len: usize) -> FdRef {
    match rng.weighted(&[80, 10, 10]) {
        0 if pool_len > 0 => FdRef::Pool(rng.below(pool_len)),
        1 => FdRef::OwnSocket,
        _ => FdRef::Scratch,
    }
}
