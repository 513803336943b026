//! Reading the program's memory without faulting, on macOS: the names and contracts of
//! the Linux `uaccess` (`sys/linux/uaccess.rs`). Where the kernel would answer
//! `EFAULT`, these answer `EFAULT` instead of taking the program down with `SIGSEGV`
//! or `SIGBUS`.
//!
//! ## How
//! `mach_vm_read_overwrite(mach_task_self(), src, len, dst, &copied)` (`<mach/mach_vm.h>`,
//! the Mach VM interface): the kernel copies `len` bytes of this task's own memory at
//! `src` into `dst` and answers `KERN_INVALID_ADDRESS` or `KERN_PROTECTION_FAILURE`,
//! without touching the bytes in user space, when any of them is unmapped or not
//! readable. [`copy_in`] copies with it straight into the engine's buffer; [`readable`]
//! copies one byte of each 4 KiB page of the range (arm64's 16 KiB pages are probed
//! four times: more probes, same answer) into a scratch byte. Each copy is one Mach
//! message to the kernel; there is no cache (the Linux module's, which makes a
//! repeated pointer free, is not written here). Nothing here allocates, locks or
//! touches errno (a Mach call does not set it).
//!
//! ## What it does not cover
//! As on Linux: memory the program unmaps between the check and a later read by
//! the kernel is the program's own use-after-unmap. Not run on a Mac.

use libc::c_int;

/// `mach_port_t`, `kern_return_t` and `mach_vm_address_t`/`mach_vm_size_t`.
type MachPort = libc::c_uint;
type KernReturn = c_int;
const KERN_SUCCESS: KernReturn = 0;

unsafe extern "C" {
    /// `mach_vm_read_overwrite(target_task, address, size, data, outsize)`.
    fn mach_vm_read_overwrite(
        target_task: MachPort,
        address: u64,
        size: u64,
        data: u64,
        outsize: *mut u64,
    ) -> KernReturn;
    /// The task's own port, what `mach_task_self()` reads (`<mach/mach_init.h>`).
    static mach_task_self_: MachPort;
}

/// The probe granule: the smaller of the two targets' page sizes.
const PAGE: usize = 4096;

/// An address no system call can read: the top 16 KiB page of the address space,
/// above every user mapping (`MACH_VM_MAX_ADDRESS`), so that `copyin` refuses it with
/// `EFAULT` without touching memory. The hooks hand it to the real call in place of a
/// program pointer the engine could not read, so the kernel answers in its own order.
pub(crate) const POISON: usize = usize::MAX & !(0x4000 - 1);

/// `POISON` as a pointer of any type.
pub(crate) fn poison<T>() -> *const T {
    POISON as *const T
}

/// Copies `len` bytes at `src` into `dst` through the kernel; `false` if any of them
/// is unreadable.
///
/// # Safety
/// `dst` is valid for writes of `len` bytes.
unsafe fn mach_copy(dst: *mut u8, src: usize, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    if src == 0 || src.checked_add(len).is_none() {
        return false;
    }
    let mut copied = 0u64;
    // SAFETY: the kernel reads this task's memory at src (failing, not faulting, where
    // it is unreadable) and writes at most len bytes into dst, valid per the contract;
    // copied is a live u64.
    let kr = unsafe {
        mach_vm_read_overwrite(
            mach_task_self_,
            src as u64,
            len as u64,
            dst as u64,
            &mut copied,
        )
    };
    kr == KERN_SUCCESS && copied == len as u64
}

/// Are the `len` bytes at `addr` readable? `len == 0` reads nothing and is always
/// readable (as the kernel skips empty copies).
pub(crate) fn readable(addr: usize, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    let Some(last) = addr.checked_add(len - 1) else {
        return false;
    };
    let mut at = addr;
    loop {
        let mut byte = 0u8;
        // SAFETY: byte is one writable byte.
        if !unsafe { mach_copy(&mut byte, at, 1) } {
            return false;
        }
        let next = (at & !(PAGE - 1)).wrapping_add(PAGE);
        if next == 0 || next > last {
            return true;
        }
        at = next;
    }
}

/// [`copy_in`] into `len` bytes at `dst`, which need not be initialised.
///
/// # Safety
/// `dst` is valid for writes of `len` bytes and does not overlap the program's `src`.
pub(crate) unsafe fn copy_in_raw(dst: *mut u8, src: *const u8, len: usize) -> Result<(), c_int> {
    // SAFETY: dst per the function contract.
    if unsafe { mach_copy(dst, src as usize, len) } {
        Ok(())
    } else {
        Err(libc::EFAULT)
    }
}

/// Copies `dst.len()` bytes of the program's memory at `src` into `dst`, or answers
/// `EFAULT` (and leaves `dst` unspecified) when any of them is unreadable.
pub(crate) fn copy_in(dst: &mut [u8], src: *const u8) -> Result<(), c_int> {
    // SAFETY: dst is our own slice of that length.
    unsafe { copy_in_raw(dst.as_mut_ptr(), src, dst.len()) }
}

/// C structs that are valid for every bit pattern (integers and raw pointers only),
/// so a copy of a program's bytes is a valid value.
///
/// # Safety
/// Implement only for such types.
pub(crate) unsafe trait Plain: Copy {}
// SAFETY: integers, raw pointers and sizes only.
unsafe impl Plain for libc::msghdr {}
// SAFETY: a raw pointer and a size.
unsafe impl Plain for libc::iovec {}
// SAFETY: an integer.
unsafe impl Plain for u32 {}
// SAFETY: an integer.
unsafe impl Plain for u64 {}

/// Reads one `T` from the program's memory at `src` (any alignment), or `EFAULT`.
pub(crate) fn read<T: Plain>(src: *const T) -> Result<T, c_int> {
    let mut v = std::mem::MaybeUninit::<T>::uninit();
    // SAFETY: v has room for one T; on success every byte of it was written, and T is
    // valid for any bit pattern (Plain).
    unsafe {
        copy_in_raw(v.as_mut_ptr().cast(), src.cast(), size_of::<T>())?;
        Ok(v.assume_init())
    }
}
