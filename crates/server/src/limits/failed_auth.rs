//! Failed bearer-token checks per client address, and the constant-time
//! match of configured secrets, used where tokens are checked (`auth.rs`).

use std::net::IpAddr;
use std::time::Duration;

use panorama_channels::signature::secrets_equal;

use crate::limits::counting::{Buckets, Rate};

/// Failed bearer-token checks per client address.
#[derive(Debug)]
pub(crate) struct FailedAuth {
    buckets: Option<Buckets<IpAddr>>,
}

impl FailedAuth {
    pub(crate) fn new(per_minute: u32) -> Self {
        FailedAuth {
            buckets: Rate::per_minute(per_minute).map(Buckets::new),
        }
    }

    /// How long `client` must wait before a token it presents is checked
    /// again; `None` while it may.
    pub(crate) fn blocked(&self, client: IpAddr) -> Option<Duration> {
        self.buckets.as_ref()?.empty_for(client_key(client))
    }

    /// Counts a failed check from `client`.
    pub(crate) fn failed(&self, client: IpAddr) {
        if let Some(buckets) = &self.buckets {
            buckets.charge(client_key(client));
        }
    }

    /// Pays for the lookup of a token from `client` as if it failed, before
    /// it is made: concurrent lookups cannot overdraw the allowance. `Err`
    /// says how long to wait when there is nothing left to pay with.
    pub(crate) fn pay(&self, client: IpAddr) -> Result<(), Duration> {
        match &self.buckets {
            Some(buckets) => buckets.take(client_key(client)),
            None => Ok(()),
        }
    }

    /// Gives back what [`FailedAuth::pay`] took for a lookup that did not
    /// fail.
    pub(crate) fn refund(&self, client: IpAddr) {
        if let Some(buckets) = &self.buckets {
            buckets.refund(client_key(client));
        }
    }
}

/// The key of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by
/// its /64, which one host usually has whole.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// The position of the secret in `secrets` that `given` is, comparing with
/// every one of them so timing does not tell which matched.
pub(crate) fn matching_secret(given: &str, secrets: &[String]) -> Option<usize> {
    secrets
        .iter()
        .enumerate()
        .fold(None, |found, (index, secret)| {
            let equal = secrets_equal(given.as_bytes(), secret.as_bytes());
            if equal { Some(index) } else { found }
        })
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn clients_are_keyed_by_address_and_ipv6_by_its_64() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(client_key(v4), v4);
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(client_key(mapped), v4);
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("v6");
        let other: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("v6");
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().expect("v6");
        assert_eq!(client_key(one), client_key(other));
        assert_ne!(client_key(one), client_key(elsewhere));
        assert_eq!(
            client_key(one),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0))
        );
    }

    #[test]
    fn failed_checks_block_an_address_once_its_minute_is_spent() {
        let failures = FailedAuth::new(2);
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(failures.blocked(client), None);
        failures.failed(client);
        assert_eq!(failures.blocked(client), None);
        failures.failed(client);
        let wait = failures.blocked(client).expect("blocked");
        assert!(wait <= Duration::from_secs(30), "{wait:?}");
        assert!(failures.pay(client).is_err());
        assert_eq!(failures.blocked(other), None);
        assert!(failures.pay(other).is_ok());
        assert!(failures.pay(other).is_ok());
        assert!(failures.pay(other).is_err(), "paid for two lookups");
        failures.refund(other);
        assert_eq!(failures.blocked(other), None, "a lookup that did not fail");
        let off = FailedAuth::new(0);
        for _ in 0..100 {
            off.failed(client);
        }
        assert_eq!(off.blocked(client), None);
    }

    #[test]
    fn secrets_match_by_position() {
        let secrets = vec!["one".to_owned(), "two".to_owned()];
        assert_eq!(matching_secret("two", &secrets), Some(1));
        assert_eq!(matching_secret("three", &secrets), None);
        assert_eq!(matching_secret("", &[]), None);
    }
}
