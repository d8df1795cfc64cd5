//! Asking the CPU for memory before it is read: the primitive under
//! [`crate::state::Warm`], which explains why the engine does it.

/// Cache lines asked for at most per block: the part of a large state an event reads
/// first.
pub const MAX_BYTES: usize = 1024;

/// Asks for the cache lines of `value` (at most [`MAX_BYTES`]). A hint: it reads
/// nothing the program sees and costs a few instructions per line.
pub fn lines<T: ?Sized>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    let bytes = std::mem::size_of_val(value).min(MAX_BYTES);
    let mut offset = 0;
    while offset < bytes {
        line(start.wrapping_add(offset));
        offset += 64;
    }
}

#[cfg(target_arch = "x86_64")]
fn line(address: *const u8) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch is a hint: it never faults and reads nothing the program sees,
    // whatever the address.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>()) }
}

#[cfg(not(target_arch = "x86_64"))]
fn line(_address: *const u8) {}
