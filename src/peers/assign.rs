//! Which leases an instance should want, decided alike by every instance from the same list of
//! members: rendezvous hashing (highest random weight). Each name goes to the member whose
//! hash with it is highest, so when a member joins or leaves only the names it wins or held
//! move, and members need not talk to agree. Pure: no clock, no I/O.

use crate::store::Member;

/// A duty one member of the whole installation does, whatever its region: its lease's name is
/// [`Duty::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Duty {
    /// Sending alerts: the rules and every channel's deliveries.
    Alerts,
    /// Running the durable queue: validating batches, claiming and sending their lines.
    Queue,
}

impl Duty {
    pub const ALL: [Duty; 2] = [Duty::Alerts, Duty::Queue];

    pub fn name(self) -> &'static str {
        match self {
            Duty::Alerts => "alerts",
            Duty::Queue => "queue",
        }
    }
}

/// The lease of probing monitor `id` from `region`: one holder per region.
pub fn monitor_lease(region: &str, id: &str) -> String {
    format!("monitor/{region}/{id}")
}

/// A stable 64-bit hash of `parts` (FNV-1a, then a SplitMix64 finish so that names differing
/// in their last bytes still spread): the same on every machine and release, which is what
/// rendezvous needs and what the scheduler's phases need.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// The member that should hold `name` among `members`; `None` when there are none.
pub fn winner<'m>(name: &str, members: &'m [Member]) -> Option<&'m Member> {
    members.iter().max_by_key(|member| {
        (
            stable_hash(&[name.as_bytes(), member.instance.as_bytes()]),
            // Ties (astronomically rare) go to the greater id, the same on every member.
            &member.instance,
        )
    })
}

/// The leases `me` should want: each monitor of `monitors` whose lease in `me`'s region it wins
/// among that region's members, and each [`Duty`] it wins among all members or already does
/// (`doing`). `me` counts as a member even when `members` misses it (its first heartbeat is not
/// yet visible).
///
/// Monitors move to the winner when a member joins, which spreads the probes; duties stay with
/// their holder while it lives, since moving one costs work in flight (a batch line sent
/// twice, an alert delivered twice) and gains nothing.
pub fn wanted<'a>(
    me: &Member,
    members: &[Member],
    monitors: impl IntoIterator<Item = &'a str>,
    doing: &[Duty],
) -> Vec<String> {
    let mut everyone: Vec<Member> = members.to_vec();
    if !everyone.contains(me) {
        everyone.push(me.clone());
    }
    let region: Vec<Member> = everyone
        .iter()
        .filter(|member| member.region == me.region)
        .cloned()
        .collect();
    let mut names: Vec<String> = monitors
        .into_iter()
        .map(|id| monitor_lease(&me.region, id))
        .filter(|name| winner(name, &region) == Some(me))
        .collect();
    for duty in Duty::ALL {
        if doing.contains(&duty) || winner(duty.name(), &everyone) == Some(me) {
            names.push(duty.name().to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(instance: &str, region: &str) -> Member {
        Member {
            instance: instance.into(),
            region: region.into(),
        }
    }

    fn ids(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("provider{i}-chat")).collect()
    }

    /// The monitors each member wants, by member.
    fn split(members: &[Member], monitors: &[String]) -> Vec<Vec<String>> {
        members
            .iter()
            .map(|me| {
                wanted(me, members, monitors.iter().map(String::as_str), &[])
                    .into_iter()
                    .filter(|name| name.starts_with("monitor/"))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn members_of_one_region_split_the_monitors_without_overlap_or_gap() {
        let members = [member("a", "eu"), member("b", "eu"), member("c", "eu")];
        let monitors = ids(3_000);
        let shares = split(&members, &monitors);
        let mut all: Vec<&String> = shares.iter().flatten().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 3_000, "every monitor wanted exactly once");
        assert_eq!(shares.iter().map(Vec::len).sum::<usize>(), 3_000);
        for share in &shares {
            // A third each, give or take the hash's noise.
            assert!((850..1_150).contains(&share.len()), "{}", share.len());
        }
    }

    #[test]
    fn each_region_probes_every_monitor_once() {
        let members = [member("a", "eu"), member("b", "us"), member("c", "us")];
        let monitors = ids(300);
        let shares = split(&members, &monitors);
        assert_eq!(
            shares[0].len(),
            300,
            "the only eu member probes all from eu"
        );
        assert_eq!(shares[1].len() + shares[2].len(), 300);
        assert!(shares[1].iter().all(|name| name.starts_with("monitor/us/")));
    }

    #[test]
    fn a_member_leaving_moves_only_its_own_monitors() {
        let three = [member("a", "eu"), member("b", "eu"), member("c", "eu")];
        let monitors = ids(1_000);
        let before = split(&three, &monitors);
        let after = split(&three[..2], &monitors);
        for (kept, now) in before.iter().zip(&after) {
            assert!(
                kept.iter().all(|name| now.contains(name)),
                "a survivor lost a monitor"
            );
        }
        assert_eq!(after[0].len() + after[1].len(), 1_000);
    }

    #[test]
    fn exactly_one_member_wants_each_duty() {
        let members = [member("a", "eu"), member("b", "us"), member("c", "ap")];
        for duty in Duty::ALL {
            let holders = members
                .iter()
                .filter(|me| wanted(me, &members, [], &[]).contains(&duty.name().to_owned()))
                .count();
            assert_eq!(holders, 1, "{duty:?}");
        }
    }

    #[test]
    fn a_duty_stays_with_the_member_doing_it_when_others_join() {
        let one = [member("a", "eu")];
        assert!(wanted(&one[0], &one, [], &[]).contains(&"alerts".to_owned()));
        // However the hash falls among many newcomers, the member doing it keeps wanting it.
        let many: Vec<Member> = (0..20).map(|i| member(&format!("n{i}"), "eu")).collect();
        let all: Vec<Member> = one.iter().chain(&many).cloned().collect();
        let names = wanted(&one[0], &all, [], &[Duty::Alerts]);
        assert!(names.contains(&"alerts".to_owned()), "{names:?}");
    }

    #[test]
    fn a_member_not_yet_listed_still_counts_itself() {
        let me = member("new", "eu");
        let names = wanted(&me, &[], ["kimi-chat"], &[]);
        assert_eq!(names, ["monitor/eu/kimi-chat", "alerts", "queue"]);
    }

    #[test]
    fn the_hash_separates_its_parts() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_eq!(stable_hash(&[b"kimi"]), stable_hash(&[b"kimi"]));
    }
}
