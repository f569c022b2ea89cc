//! What one sample of the adaptive drain costs: `sampler_cost SAMPLES [PORT,... [CIDR,...]]`
//! (the `--drain-ports` and `--drain-ignore-from` of the sampler).
//!
//! Runs drainit's own sampler (`drainit::activity::Sampler`, the code the
//! drain runs) SAMPLES times, 100 ms apart as during a drain, in the network
//! namespace it is started in, and prints one JSON object: the connections
//! the sampler saw and, per sample, the CPU time of the thread (user and
//! kernel: the kernel's sock_diag work runs in drainit's system calls) and
//! the wall time, in microseconds. Run by bench/sampler.py.

use std::time::{Duration, Instant};

use drainit::activity::{parse_port, Cidr, Sampler, Watch};
use drainit::sys::thread_cpu_time as thread_cpu;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: sampler_cost SAMPLES [PORT,... [CIDR,...]]";
    let samples: usize = args
        .get(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{usage}"));
    let ports = args.get(2).map_or(Vec::new(), |list| {
        list.split(',')
            .map(|p| parse_port(p).unwrap_or_else(|e| panic!("{p:?} {e}")))
            .collect()
    });
    let ignore_from = args.get(3).map_or(Vec::new(), |list| {
        list.split(',')
            .map(|c| Cidr::parse(c).unwrap_or_else(|e| panic!("{c:?} {e}")))
            .collect()
    });
    let mut sampler = Sampler::new(Watch { ports, ignore_from });
    let (mut cpu, mut wall, mut connections) = (Vec::new(), Vec::new(), 0);
    for i in 0..=samples {
        let (cpu0, wall0) = (thread_cpu(), Instant::now());
        let result = sampler.sample();
        let (cpu1, wall1) = (thread_cpu(), Instant::now());
        match result {
            Ok((seen, snapshot)) => {
                connections = snapshot.connections();
                if std::env::var_os("SAMPLER_DEBUG").is_some() {
                    eprintln!("{seen:?} {snapshot:?}");
                }
            }
            Err(why) => panic!("sample {i}: {why}"),
        }
        // The first sample is the baseline (and warms the caches).
        if i > 0 {
            cpu.push((cpu1 - cpu0).as_secs_f64() * 1e6);
            wall.push((wall1 - wall0).as_secs_f64() * 1e6);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "{{\"connections\": {connections}, \"cpu_us\": [{}], \"wall_us\": [{}]}}",
        list(&cpu),
        list(&wall)
    );
}
