//! Who may call what: the roles an API token carries.

use std::fmt;
use std::str::FromStr;

/// What an API token may do. `admin` may do everything the others may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Contact-centre agents and their desktops: customer reads.
    Agent,
    /// Channel systems: posting contact events.
    Channel,
    /// Operators: everything, including what only admins may do.
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 3] = [Role::Agent, Role::Channel, Role::Admin];

    /// The name tokens and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Channel => "channel",
            Role::Admin => "admin",
        }
    }

    /// Whether a caller holding `self` may do what `needed` may: the same
    /// role, or admin.
    pub fn grants(self, needed: Role) -> bool {
        self == needed || self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not `agent`, `channel` or `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role \"{0}\"; expected one of agent, channel, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| UnknownRole(raw.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
    }

    #[test]
    fn admin_grants_every_role_and_the_others_only_their_own() {
        for needed in Role::ALL {
            assert!(Role::Admin.grants(needed));
        }
        assert!(Role::Agent.grants(Role::Agent));
        assert!(!Role::Agent.grants(Role::Channel));
        assert!(!Role::Agent.grants(Role::Admin));
        assert!(Role::Channel.grants(Role::Channel));
        assert!(!Role::Channel.grants(Role::Agent));
        assert!(!Role::Channel.grants(Role::Admin));
    }
}
