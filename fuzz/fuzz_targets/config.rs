//! The whole command line: any arguments give a configuration or an error,
//! never a panic (PID 1 must not die on bad input).
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use drainit::config::{Config, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args = data.split(|&b| b == 0).map(|arg| OsString::from_vec(arg.to_vec()));
    let vars = [(OsString::from("KUBERNETES_SERVICE_HOST"), OsString::from("10.0.0.1"))];
    if let Ok(Request::Run(config)) = Config::parse(args, &vars) {
        let _ = config.describe();
    }
});
