//! Test support: reproducible random bytes (xorshift64), for hostile-input tests.

/// `n` bytes of xorshift64 from `seed`: the same bytes on every run.
pub fn xorshift_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
