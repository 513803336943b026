//! Lock-free cells the engine's state is kept in, so that the modules holding that
//! state (`state`, `netstate`, `fdtable`) need no `unsafe` of their own. None of them
//! blocks, allocates or holds anything across `fork` that the child cannot reset; each
//! is safe to use from a signal handler that interrupted another user of it.

use mifshim_fastpath::{CHUNK, CHUNKS};
use std::cell::UnsafeCell;
use std::sync::atomic::Ordering::{Acquire, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize};

/// A value published once and never freed: readers get `&'static T` (no count, no
/// lock).
pub(crate) struct Published<T>(AtomicPtr<T>);

impl<T> Published<T> {
    pub(crate) const fn new() -> Self {
        Published(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// Publishes `v` for the rest of the process (it is leaked); a value published
    /// before stays where it is (readers may hold it) and `v` replaces it for later
    /// readers.
    pub(crate) fn publish(&self, v: T) -> &'static T {
        let p = Box::into_raw(Box::new(v));
        self.0.store(p, Release);
        // SAFETY: p comes from Box::into_raw and is never freed.
        unsafe { &*p }
    }

    /// The value, once published.
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&'static T> {
        let p = self.0.load(Acquire);
        // SAFETY: a non-NULL p was stored by `publish`: a leaked Box, never freed, never
        // written after it was published.
        (!p.is_null()).then(|| unsafe { &*p })
    }
}

/// Two buffers of `T`: readers use the current one, holding a count on it; one writer at
/// a time (whoever takes the flag) fills the spare one, with its scratch `S`, and makes
/// it current. A writer never waits: it gives up when another is writing or a reader
/// still holds the spare.
pub(crate) struct DoubleBuffer<T, S> {
    slots: [DoubleSlot<T>; 2],
    current: AtomicUsize,
    writing: AtomicBool,
    scratch: UnsafeCell<S>,
}

struct DoubleSlot<T> {
    readers: AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: a slot's `data` is written only by the holder of `writing`, and only while the
// slot is not current and has no readers; readers read a slot only while they hold a
// count on it and it was current after they took the count (so the writer, which checks
// the count after the slot stopped being current, never writes it meanwhile). `scratch`
// is touched only by the holder of `writing`.
unsafe impl<T: Send + Sync, S: Send> Sync for DoubleBuffer<T, S> {}

/// Gives back a reader's count, also when the reader's callback panics (a count kept
/// forever would stop every later refresh of that slot).
struct ReadCount<'a>(&'a AtomicUsize);

impl Drop for ReadCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl<T, S> DoubleBuffer<T, S> {
    pub(crate) const fn new(a: T, b: T, scratch: S) -> Self {
        DoubleBuffer {
            slots: [
                DoubleSlot {
                    readers: AtomicUsize::new(0),
                    data: UnsafeCell::new(a),
                },
                DoubleSlot {
                    readers: AtomicUsize::new(0),
                    data: UnsafeCell::new(b),
                },
            ],
            current: AtomicUsize::new(0),
            writing: AtomicBool::new(false),
            scratch: UnsafeCell::new(scratch),
        }
    }

    /// Runs `f` on the current buffer. The count it holds meanwhile is given back when
    /// `f` returns or unwinds.
    #[inline]
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let slot = loop {
            let i = self.current.load(SeqCst);
            let slot = &self.slots[i];
            slot.readers.fetch_add(1, SeqCst);
            if self.current.load(SeqCst) == i {
                break slot;
            }
            slot.readers.fetch_sub(1, SeqCst);
        };
        let _count = ReadCount(&slot.readers);
        // SAFETY: we hold a count on the slot and it was current after we took it (see
        // the `Sync` impl).
        f(unsafe { &*slot.data.get() })
    }

    /// If no other writer is at work and no reader holds the spare buffer: `fill`s the
    /// spare (with the scratch), makes it current, then runs `published` (still as the
    /// only writer) with what `fill` returned. `None` when it could not write.
    pub(crate) fn write<R>(
        &self,
        fill: impl FnOnce(&mut T, &mut S) -> R,
        published: impl FnOnce(&R),
    ) -> Option<R> {
        if self
            .writing
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_err()
        {
            return None;
        }
        /// Gives back the writer's flag, also on a panic.
        struct Writing<'a>(&'a AtomicBool);
        impl Drop for Writing<'_> {
            fn drop(&mut self) {
                self.0.store(false, SeqCst);
            }
        }
        let _writing = Writing(&self.writing);
        let spare = 1 - self.current.load(SeqCst);
        let slot = &self.slots[spare];
        if slot.readers.load(SeqCst) != 0 {
            return None;
        }
        // SAFETY: we hold `writing`; the spare is not current and has no readers, and a
        // reader racing to it sees `current != spare` after taking its count and backs
        // off before reading (see the `Sync` impl).
        let (data, scratch) = unsafe { (&mut *slot.data.get(), &mut *self.scratch.get()) };
        let r = fill(data, scratch);
        self.current.store(spare, SeqCst);
        published(&r);
        Some(r)
    }

    /// In a child after `fork`: the writer and the readers were threads of the parent.
    pub(crate) fn reset_after_fork(&self) {
        self.writing.store(false, SeqCst);
        for s in &self.slots {
            s.readers.store(0, SeqCst);
        }
    }

    /// The readers holding each buffer (tests).
    #[cfg(test)]
    fn readers(&self) -> [usize; 2] {
        [
            self.slots[0].readers.load(SeqCst),
            self.slots[1].readers.load(SeqCst),
        ]
    }
}

/// Types for which all-zero bytes are a valid value: what a fresh anonymous mapping
/// holds.
///
/// # Safety
/// All-zero bytes are a valid value of the type.
pub(crate) unsafe trait Zeroed {}

// SAFETY: atomics and integers: zero is a valid value.
unsafe impl Zeroed for mifshim_fastpath::FdSlot {}
// SAFETY: as above.
unsafe impl Zeroed for [std::sync::atomic::AtomicU64; 2] {}

/// The slot of `fd` in one of the per-fd tables (`mifshim_fastpath::Shared`), mapping
/// its chunk (zeroed anonymous memory, never unmapped once published) if needed.
pub(crate) fn chunk_slot_create<T: Zeroed>(
    table: &'static [AtomicPtr<T>; CHUNKS],
    fd: i32,
) -> Option<&'static T> {
    // SAFETY: map_zeroed returns zeroed anonymous memory that is never unmapped unless
    // handed back through `unmap` unpublished; all-zero bytes are a valid T (`Zeroed`).
    unsafe {
        mifshim_fastpath::slot_create(
            table,
            fd,
            |bytes| super::map_zeroed(bytes).map(|p| p.cast::<T>()),
            // SAFETY: `p` was never published.
            |p, bytes| super::unmap(p.cast(), bytes),
        )
    }
}

/// Calls `f` on every slot of every chunk mapped so far in a per-fd table.
pub(crate) fn for_each_mapped<T: 'static>(
    table: &'static [AtomicPtr<T>; CHUNKS],
    mut f: impl FnMut(&T),
) {
    for head in table {
        let p = head.load(Acquire);
        if !p.is_null() {
            // SAFETY: a published chunk holds CHUNK slots and is never unmapped.
            let chunk = unsafe { std::slice::from_raw_parts(p, CHUNK) };
            chunk.iter().for_each(&mut f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `netstate::with` took a reader count on the current snapshot and gave it back
    /// only when its callback returned: a callback that panicked (caught by the hook's
    /// guard, the call failed closed) left the count there for good, and from then on
    /// every refresh that found that slot spare gave up: the snapshot was never taken
    /// again. The count now goes back when the callback unwinds too.
    #[test]
    fn snapshot_reader_count_kept_when_the_callback_panicked() {
        static B: DoubleBuffer<u32, ()> = DoubleBuffer::new(0, 0, ());
        let r = std::panic::catch_unwind(|| B.read(|_| panic!("a bug in a decision")));
        assert!(r.is_err());
        assert_eq!(B.readers(), [0, 0]);
        // Both slots can still be written: two refreshes in a row succeed.
        assert_eq!(B.write(|v, _| *v = 1, |_| {}), Some(()));
        assert_eq!(B.write(|v, _| *v = 2, |_| {}), Some(()));
        assert_eq!(B.read(|v| *v), 2);
    }

    #[test]
    fn a_writer_gives_up_while_a_reader_holds_the_spare() {
        static B: DoubleBuffer<u32, u8> = DoubleBuffer::new(10, 20, 0);
        B.read(|v| {
            assert_eq!(*v, 10);
            // Slot 1 (spare) is free: written and made current.
            assert_eq!(
                B.write(
                    |v, s| {
                        *s += 1;
                        *v = 11
                    },
                    |_| {}
                ),
                Some(())
            );
            // Now slot 0 is the spare, and this reader holds it.
            assert_eq!(B.write(|v, _| *v = 12, |_| {}), None);
        });
        assert_eq!(B.read(|v| *v), 11);
        assert_eq!(B.write(|v, _| *v = 12, |_| {}), Some(()));
        assert_eq!(B.read(|v| *v), 12);
    }

    #[test]
    fn published_values_stay() {
        static P: Published<String> = Published::new();
        assert!(P.get().is_none());
        let a = P.publish("a".into());
        assert_eq!(P.get().map(String::as_str), Some("a"));
        assert_eq!(a, "a");
    }
}
