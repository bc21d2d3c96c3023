//! Which of PostgreSQL's backends serve a given process: the local ports of
//! that process's TCP connections to the server, from Linux's /proc. Lets
//! the harness terminate exactly the projector's connections even when they
//! carry no `application_name`.

use std::collections::HashSet;
use std::fs;

/// One row of `/proc/net/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    /// Local port.
    pub local_port: u16,
    /// Remote port.
    pub remote_port: u16,
    /// The socket's inode, as `/proc/PID/fd/*` links name it.
    pub inode: u64,
}

/// The rows of a `/proc/net/tcp` table (the header line and malformed
/// lines are skipped).
pub fn parse_tcp_table(text: &str) -> Vec<TcpSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |field: &str| {
                let (_, port) = field.rsplit_once(':')?;
                u16::from_str_radix(port, 16).ok()
            };
            Some(TcpSocket {
                local_port: port(fields.get(1)?)?,
                remote_port: port(fields.get(2)?)?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// The inode of a `/proc/PID/fd/N` link target `socket:[12345]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The local ports of process `pid`'s IPv4 TCP connections to
/// `remote_port`; empty when the process or /proc cannot be read.
pub fn connection_ports(pid: u32, remote_port: u16) -> Vec<u16> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: HashSet<u64> = entries
        .flatten()
        .filter_map(|entry| fs::read_link(entry.path()).ok())
        .filter_map(|target| socket_inode(&target.to_string_lossy()))
        .collect();
    let Ok(table) = fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return Vec::new();
    };
    parse_tcp_table(&table)
        .into_iter()
        .filter(|socket| socket.remote_port == remote_port && inodes.contains(&socket.inode))
        .map(|socket| socket.local_port)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ports_and_inodes_of_the_tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:8AE3 00000000:0000 0A 00000000:00000000 00:00000000 00000000   108        0 31337 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:D431 0100007F:8AE3 01 00000000:00000000 00:00000000 00000000     0        0 42424 1 0000000000000000 20 4 30 10 -1\n\
   garbage\n";
        assert_eq!(
            parse_tcp_table(table),
            vec![
                TcpSocket {
                    local_port: 0x8AE3,
                    remote_port: 0,
                    inode: 31337
                },
                TcpSocket {
                    local_port: 0xD431,
                    remote_port: 0x8AE3,
                    inode: 42424
                },
            ]
        );
    }

    #[test]
    fn reads_the_inode_of_a_socket_link() {
        assert_eq!(socket_inode("socket:[42424]"), Some(42424));
        assert_eq!(socket_inode("pipe:[42424]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn finds_this_process_s_own_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("address").port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let local = client.local_addr().expect("local address").port();
        assert_eq!(connection_ports(std::process::id(), port), vec![local]);
        assert!(connection_ports(std::process::id(), 1).is_empty());
    }
}
