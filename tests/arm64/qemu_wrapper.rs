//! TEST_DRAINIT_BIN for tests/arm64/qemu-user.sh: execve(2)s `QEMU BINARY
//! ARGS...` (the paths fixed when it is built: WRAP_QEMU, WRAP_BINARY) with
//! the caller's environ as it is, so that drainit's pid, environment (order,
//! duplicates, entries without `=`), descriptors and signal dispositions are
//! the test's. A shell script would add PWD; std's Command rebuilds the
//! environment. Each start appends a line to WRAP_STARTS, to prove the suite
//! ran through it.
use std::ffi::{c_char, CString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

extern "C" {
    static environ: *const *const c_char;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> i32;
}

fn main() {
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(env!("WRAP_STARTS")) {
        let _ = f.write_all(b"\n");
    } // (closed here, before the exec)
    let qemu = CString::new(env!("WRAP_QEMU")).unwrap();
    let mut args = vec![qemu.clone(), CString::new(env!("WRAP_BINARY")).unwrap()];
    for arg in std::env::args_os().skip(1) {
        args.push(CString::new(arg.as_bytes()).unwrap());
    }
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: NUL-terminated strings and arrays that outlive the call; environ is the C library's.
    unsafe { execve(qemu.as_ptr(), argv.as_ptr(), environ) };
    eprintln!("qemu_wrapper: cannot exec {}: {}", env!("WRAP_QEMU"), std::io::Error::last_os_error());
    std::process::exit(127);
}
