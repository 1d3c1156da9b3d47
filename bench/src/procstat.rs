//! CPU time and resident memory of a process from `/proc`, and finding the process that
//! listens on a TCP port (through `/proc/net/tcp*` and the owners of socket inodes), so the
//! report can say what the server spent without any agent inside it.

use std::time::Instant;

/// Clock ticks a second of `/proc/<pid>/stat` (USER_HZ, 100 on every Linux we run on).
const TICKS: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// User plus system CPU seconds so far.
    pub cpu_secs: f64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status` (`pid` `None` means this process).
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let (_, cpu_secs) = parse_stat(&stat)?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(Sample {
        at: Instant::now(),
        cpu_secs,
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:").unwrap_or(0),
    })
}

/// The command name and user plus system CPU seconds of a `/proc/.../stat` line.
fn parse_stat(stat: &str) -> Option<(&str, f64)> {
    // The command name is in parentheses and may hold spaces.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let f: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((&stat[open + 1..close], (utime + stime) / TICKS))
}

/// CPU seconds so far of each thread name of process `pid` (threads of one name summed; a
/// thread that ended since is missing).
pub fn threads(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in dir.flatten() {
        let Some((name, cpu_secs)) = std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| parse_stat(&stat).map(|(n, c)| (n.to_owned(), c)))
        else {
            continue;
        };
        *out.entry(name).or_insert(0.0) += cpu_secs;
    }
    out
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(before: &Sample, after: &Sample) -> f64 {
    let wall = after.at.duration_since(before.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    100.0 * (after.cpu_secs - before.cpu_secs) / wall
}

/// The process with a listening TCP socket on `port`, if one can be seen.
pub fn listener_pid(port: u16) -> Option<u32> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && wanted.iter().any(|w| link.as_os_str() == w.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// Inodes of sockets in state LISTEN (0A) on `port` in a `/proc/net/tcp` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    let port_hex = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let (_, p) = local.rsplit_once(':')?;
            (p == port_hex && *f.get(3)? == "0A")
                .then(|| f.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_listening_inodes_in_a_tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:176F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n   1: 0100007F:176F 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 20 4 30 10 -1\n";
        assert_eq!(listening_inodes(table, 5999), vec![4242]);
        assert!(listening_inodes(table, 80).is_empty());
    }

    #[test]
    fn samples_this_process() {
        let s = sample(None).expect("/proc/self is readable");
        assert!(s.rss_kib > 0);
    }
}
