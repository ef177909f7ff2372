//! Founding and joining (kubernetes.md §3 rules 4 and 5), run once gossip is up and before
//! the node serves CQL.
//!
//! A node that already joined resumes at once: it never founds anything, and restarts of
//! existing nodes go in parallel. An empty node looks for a member first; it founds a new
//! ring only when the pure rule in `shoal_k8s::founding` allows it (ordinal 0, or outside a
//! StatefulSet a node whose only seed is itself) and nobody answered during a full round.
//! Joining nodes announce `BOOT`, order themselves with `shoal_k8s::join` so that one joins
//! at a time, and take tokens chosen against the ring they see for even ownership.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shoal_gossip::ring::HostId;
use shoal_gossip::state::{AppKey, Status, format_tokens};
use shoal_k8s::founding::{self, FoundingDecision, FoundingInput};
use shoal_k8s::identity::PodIdentity;
use shoal_k8s::join::{self, JoinDecision, Member, MemberState};
use tracing::info;

use crate::cluster::GossipService;
use crate::identity::LocalState;

/// How long an empty node listens before concluding that nobody answers: two gossip rounds
/// reach every seed, and DNS discovery resolves within it.
pub const DISCOVERY_ROUND: Duration = Duration::from_secs(3);

/// How long a node announces BOOT before it may take tokens.
pub const BOOT_SETTLE: Duration = Duration::from_secs(2);

/// After this long waiting, BOOT states of nodes not known alive no longer hold a join back.
pub const STALE_BOOT: Duration = Duration::from_secs(30);

/// What the node did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// It had joined before: same host ID and tokens, no waiting.
    Resumed,
    /// It formed a new ring.
    Founded,
    /// It joined an existing ring with fresh tokens.
    Joined,
}

/// Present while a join is unfinished: a node killed mid-join joins again on restart.
fn marker(system_dir: &Path) -> PathBuf {
    system_dir.join("joining")
}

/// Whether this start must go through founding/joining: the identity did not exist before
/// this start, or an earlier join did not finish.
pub fn needs_join(system_dir: &Path, identity_existed: bool) -> bool {
    !identity_existed || marker(system_dir).exists()
}

/// Gossip's view as join ordering reads it. With `stale_boot`, BOOT announcements of nodes
/// the failure detector does not hold alive are ignored (a node that died while waiting
/// must not block the others for ever).
fn members(gossip: &GossipService, stale_boot: bool) -> (Vec<Member>, bool) {
    let mut out = Vec::new();
    let mut member_answered = false;
    for p in gossip.peers() {
        let state = if !p.alive {
            // Gossip spreads a new node's BOOT through the seed before this node has
            // exchanged an echo with it: it is waiting too, whatever the detector says yet.
            match p.status.as_deref().map(Status::parse) {
                Some(Status::Boot) if !stale_boot => MemberState::WaitingToJoin,
                _ => MemberState::Down,
            }
        } else {
            match p.status.as_deref().map(Status::parse) {
                Some(Status::Normal) => {
                    member_answered = true;
                    MemberState::Normal
                }
                // A live node without a status is still starting: it may be an empty node
                // about to announce BOOT, so it counts as waiting (joins stay one at a time).
                Some(Status::Boot) | None => MemberState::WaitingToJoin,
                Some(Status::Leaving) => MemberState::Leaving,
                _ => MemberState::Down,
            }
        };
        out.push(Member {
            host_id: p.host_id.to_string(),
            pod: p
                .hostname
                .as_deref()
                .and_then(shoal_k8s::identity::parse_pod_hostname),
            state,
        });
    }
    (out, member_answered)
}

/// Runs founding/joining. `local` gets the tokens the node ends up with, persisted to
/// `state_path` when they change.
#[allow(clippy::too_many_arguments)]
pub async fn join(
    gossip: &GossipService,
    local: &mut LocalState,
    state_path: &Path,
    system_dir: &Path,
    needs_join: bool,
    pod: Option<&PodIdentity>,
    only_seed_is_self: bool,
) -> anyhow::Result<Joined> {
    if !needs_join {
        return Ok(Joined::Resumed);
    }
    std::fs::write(marker(system_dir), b"")?;
    let started = Instant::now();
    let me = HostId(*local.host_id.as_bytes());
    let me_member = Member {
        host_id: me.to_string(),
        pod: pod.cloned(),
        state: MemberState::WaitingToJoin,
    };
    let mut attempt = 0u32;
    let mut announced_boot: Option<Instant> = None;
    let mut last_log = Instant::now() - Duration::from_secs(60);
    let outcome = loop {
        let (view, member_answered) = members(gossip, started.elapsed() > STALE_BOOT);
        let decision = founding::decide(FoundingInput {
            has_data: false,
            ordinal: pod.map(|p| p.ordinal),
            only_seed_is_self,
            member_answered,
            // With no seed but itself there is nobody to wait for (a lone seed node).
            discovery_round_done: only_seed_is_self || started.elapsed() >= DISCOVERY_ROUND,
        });
        match decision {
            FoundingDecision::Found | FoundingDecision::Resume => {
                info!("no cluster member answered: founding a new ring");
                break Joined::Founded;
            }
            FoundingDecision::Join => {
                let booted_at = *announced_boot.get_or_insert_with(|| {
                    gossip.set_local_state(AppKey::Status, Status::Boot.as_str());
                    Instant::now()
                });
                match join::decide(&me_member, &view) {
                    // Two gossip rounds after BOOT, every other waiting node has seen ours
                    // and we theirs (Cassandra waits RING_DELAY for the same reason): two
                    // empty nodes never pick tokens against the same ring.
                    JoinDecision::Proceed if booted_at.elapsed() < BOOT_SETTLE => {}
                    JoinDecision::Proceed => {
                        let ring = gossip.view(|g| g.ring());
                        let n = local.tokens.len();
                        let tokens =
                            shoal_gossip::tokens::allocate_tokens(&ring, n, &mut rand::rng());
                        local.tokens = tokens;
                        local.store(state_path)?;
                        gossip.set_local_state(AppKey::Tokens, format_tokens(&local.tokens));
                        info!(
                            members = ring.hosts().count(),
                            "joining the ring with tokens chosen for even ownership"
                        );
                        break Joined::Joined;
                    }
                    other => {
                        if last_log.elapsed() > Duration::from_secs(5) {
                            info!(?other, "waiting for my turn to join");
                            last_log = Instant::now();
                        }
                    }
                }
            }
            FoundingDecision::Wait => {
                if last_log.elapsed() > Duration::from_secs(5) {
                    info!(
                        waited_ms = started.elapsed().as_millis() as u64,
                        "no cluster member answers yet; this node may not found one, waiting"
                    );
                    last_log = Instant::now();
                }
            }
        }
        let seed = u64::from_le_bytes(me.0[..8].try_into().unwrap_or([0; 8]));
        let delay = join::retry_delay(attempt, seed).min(Duration::from_millis(500));
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
    };
    std::fs::remove_file(marker(system_dir))?;
    Ok(outcome)
}
