//! Where the cgroup controllers herd needs live on this host.
//!
//! Hosts come in three layouts: pure cgroup v2 (`/sys/fs/cgroup` is
//! cgroup2), pure v1, and the hybrid one (v1 controllers under
//! `/sys/fs/cgroup/<name>`, plus an empty cgroup2 at
//! `/sys/fs/cgroup/unified`). The layout is read from the kernel — the
//! mount table (`/proc/self/mountinfo`, filesystem types `cgroup` and
//! `cgroup2`), this process's own cgroups (`/proc/self/cgroup`), each
//! cgroup2's `cgroup.controllers`, and the filesystem magic of every
//! directory used (`statfs`) — never guessed from a directory that merely
//! exists or is writable. (The Go reference wrote plain files into a tmpfs
//! on v1 hosts and believed it had set limits.)
//!
//! Each controller is placed on its own: on the v2 hierarchy if the v2
//! cgroup that herd nests under offers it, else on the v1 hierarchy that
//! has it bound. herd's cgroups nest under the host process's own cgroup
//! in each hierarchy, or under a configured cgroup path.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use procfs::FromBufRead;
use procfs::ProcessCGroups;
use procfs::process::MountInfos;

/// A resource controller herd uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }
}

/// Which cgroup version a directory belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// Where one controller's cgroups are made: under `base`, in a
/// hierarchy of `version` mounted at `mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Home {
    pub controller: Controller,
    pub version: Version,
    pub mount: PathBuf,
    /// The directory herd's pool cgroups are created in.
    pub base: PathBuf,
}

/// The homes found for each wanted controller, and why others are missing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    pub homes: Vec<Home>,
    /// The v2 hierarchy herd would nest under, even if it offers no
    /// controllers (used for process tracking and `cgroup.kill`).
    pub v2_base: Option<PathBuf>,
    pub missing: Vec<(Controller, String)>,
}

const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The filesystem magic of `path`, if it can be read.
pub(crate) fn fs_magic(path: &Path) -> Option<i64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs into a zeroed struct with a valid C string.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut st) == 0).then_some(st.f_type as i64)
    }
}

/// Whether `path` is a directory of a cgroup filesystem of `version`.
pub(crate) fn is_cgroup_dir(path: &Path, version: Version) -> bool {
    let want = match version {
        Version::V1 => CGROUP_SUPER_MAGIC,
        Version::V2 => CGROUP2_SUPER_MAGIC,
    };
    fs_magic(path) == Some(want)
}

/// Reads this host's layout for `wanted` controllers. `root` is the
/// cgroup path to nest under (`None`: this process's own cgroup).
pub(crate) fn detect(wanted: &[Controller], root: Option<&Path>) -> Layout {
    let mountinfo = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    let cgroups = std::fs::read("/proc/self/cgroup").unwrap_or_default();
    let layout = plan(&mountinfo, &cgroups, wanted, root, &|dir| {
        std::fs::read_to_string(dir.join("cgroup.controllers")).ok()
    });
    verify(layout)
}

/// Drops homes whose directories are not really cgroup filesystems.
fn verify(mut layout: Layout) -> Layout {
    let mut kept = Vec::new();
    for home in layout.homes.drain(..) {
        if is_cgroup_dir(&home.mount, home.version) {
            kept.push(home);
        } else {
            layout
                .missing
                .push((home.controller, format!("{} is not a cgroup filesystem", home.mount.display())));
        }
    }
    layout.homes = kept;
    if let Some(base) = &layout.v2_base
        && !is_cgroup_dir(base.parent().unwrap_or(base), Version::V2)
        && !is_cgroup_dir(base, Version::V2)
    {
        layout.v2_base = None;
    }
    layout
}

/// The pure part of [`detect`]: works on the texts of
/// `/proc/self/mountinfo` and `/proc/self/cgroup`, and reads a v2
/// directory's `cgroup.controllers` through `controllers_of`.
pub(crate) fn plan(
    mountinfo: &[u8],
    self_cgroup: &[u8],
    wanted: &[Controller],
    root: Option<&Path>,
    controllers_of: &dyn Fn(&Path) -> Option<String>,
) -> Layout {
    let mut layout = Layout::default();
    let mounts = MountInfos::from_buf_read(mountinfo).map(|m| m.0).unwrap_or_default();
    let own = ProcessCGroups::from_buf_read(self_cgroup).map(|c| c.0).unwrap_or_default();

    // The v2 hierarchy: herd's base there, and what it offers.
    let own_v2 = own.iter().find(|c| c.hierarchy == 0 && c.controllers.is_empty());
    if let Some(mount) = mounts.iter().find(|m| m.fs_type == "cgroup2") {
        let path =
            root.map(|r| r.to_string_lossy().into_owned()).or_else(|| own_v2.map(|c| c.pathname.clone()));
        if let Some(path) = path {
            let base = join_cgroup_path(&mount.mount_point, &mount.root, &path);
            let v2_offers: Vec<String> = controllers_of(&base)
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            for &c in wanted {
                if v2_offers.iter().any(|o| o == c.name()) {
                    layout.homes.push(Home {
                        controller: c,
                        version: Version::V2,
                        mount: mount.mount_point.clone(),
                        base: base.clone(),
                    });
                }
            }
            layout.v2_base = Some(base);
        }
    }

    for &c in wanted {
        if layout.homes.iter().any(|h| h.controller == c) {
            continue;
        }
        let mount = mounts.iter().find(|m| m.fs_type == "cgroup" && m.super_options.contains_key(c.name()));
        let Some(mount) = mount else {
            let why = if let Some(base) = &layout.v2_base {
                format!(
                    "the {} controller is not enabled for {} (cgroup v2: the parent's cgroup.subtree_control \
                     must enable it, or no v1 hierarchy has it)",
                    c.name(),
                    base.display()
                )
            } else {
                format!("no cgroup hierarchy has the {} controller", c.name())
            };
            layout.missing.push((c, why));
            continue;
        };
        let own_path = own
            .iter()
            .find(|g| g.hierarchy != 0 && g.controllers.iter().any(|n| n == c.name()))
            .map(|g| g.pathname.clone())
            .unwrap_or_else(|| "/".to_string());
        let path = root.map(|r| r.to_string_lossy().into_owned()).unwrap_or(own_path);
        layout.homes.push(Home {
            controller: c,
            version: Version::V1,
            mount: mount.mount_point.clone(),
            base: join_cgroup_path(&mount.mount_point, &mount.root, &path),
        });
    }
    layout
}

/// The directory of cgroup `path` in a hierarchy mounted at `mount_point`
/// whose mount shows the hierarchy from `mount_root` on (a container's
/// cgroup namespace mounts its own cgroup as `/`).
fn join_cgroup_path(mount_point: &Path, mount_root: &str, path: &str) -> PathBuf {
    let relative =
        if mount_root != "/" && path.starts_with(mount_root) { &path[mount_root.len()..] } else { path };
    let mut dir = mount_point.to_path_buf();
    for part in relative.split('/').filter(|p| !p.is_empty() && *p != "." && *p != "..") {
        dir.push(part);
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

    // The layout of the machines herd's CI runs on (abridged).
    const HYBRID_MOUNTS: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755
34 33 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu
35 33 0:30 / /sys/fs/cgroup/cpuacct rw,relatime shared:11 - cgroup cgroup rw,cpuacct
36 33 0:31 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory
37 33 0:32 / /sys/fs/cgroup/pids rw,relatime shared:13 - cgroup cgroup rw,pids
38 33 0:33 / /sys/fs/cgroup/unified rw,relatime shared:14 - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/f57b
1:cpu:/
0::/
";

    #[test]
    fn hybrid_host_uses_v1_for_every_controller_nested_under_our_own_cgroup() {
        let layout =
            plan(HYBRID_MOUNTS.as_bytes(), HYBRID_SELF.as_bytes(), &ALL, None, &|_| Some(String::new()));
        assert!(layout.missing.is_empty(), "{:?}", layout.missing);
        let home = |c| layout.homes.iter().find(|h| h.controller == c).unwrap().clone();
        assert_eq!(home(Controller::Memory).version, Version::V1);
        assert_eq!(home(Controller::Memory).base, PathBuf::from("/sys/fs/cgroup/memory/process_api/f57b"));
        assert_eq!(home(Controller::Pids).base, PathBuf::from("/sys/fs/cgroup/pids"));
        assert_eq!(home(Controller::Cpu).base, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(layout.v2_base, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn pure_v2_host_uses_v2_when_our_cgroup_offers_the_controllers() {
        let mounts = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let own = "0::/system.slice/app.service\n";
        let layout = plan(mounts.as_bytes(), own.as_bytes(), &ALL, None, &|dir| {
            assert_eq!(dir, Path::new("/sys/fs/cgroup/system.slice/app.service"));
            Some("cpuset cpu io memory pids\n".into())
        });
        assert!(layout.missing.is_empty());
        assert!(layout.homes.iter().all(|h| h.version == Version::V2));
        assert!(layout.homes.iter().all(|h| h.base == Path::new("/sys/fs/cgroup/system.slice/app.service")));
    }

    #[test]
    fn v2_without_delegated_controllers_reports_what_is_missing() {
        let mounts = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let layout = plan(mounts.as_bytes(), b"0::/user.slice\n", &ALL, None, &|_| Some("memory\n".into()));
        assert_eq!(layout.homes.len(), 1);
        let missing: Vec<_> = layout.missing.iter().map(|(c, _)| *c).collect();
        assert_eq!(missing, [Controller::Pids, Controller::Cpu]);
        assert!(layout.missing[0].1.contains("not enabled"), "{}", layout.missing[0].1);
    }

    #[test]
    fn a_configured_root_replaces_our_own_path() {
        let layout = plan(
            HYBRID_MOUNTS.as_bytes(),
            HYBRID_SELF.as_bytes(),
            &[Controller::Memory],
            Some(Path::new("/herd")),
            &|_| None,
        );
        assert_eq!(layout.homes[0].base, PathBuf::from("/sys/fs/cgroup/memory/herd"));
    }

    #[test]
    fn a_container_cgroup_namespace_mount_root_is_stripped() {
        let mounts = "30 25 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let layout = plan(mounts.as_bytes(), b"0::/kubepods/pod1/c1\n", &[Controller::Pids], None, &|_| {
            Some("pids".into())
        });
        assert_eq!(layout.homes[0].base, PathBuf::from("/sys/fs/cgroup/c1"));
    }

    #[test]
    fn no_cgroups_at_all() {
        let layout = plan(b"", b"", &ALL, None, &|_| None);
        assert!(layout.homes.is_empty());
        assert_eq!(layout.missing.len(), 3);
    }

    #[test]
    fn this_host_is_read_for_real() {
        // Whatever this machine is, every home found is a real cgroup fs.
        let layout = detect(&ALL, None);
        for home in &layout.homes {
            assert!(is_cgroup_dir(&home.mount, home.version), "{home:?}");
        }
        assert!(!is_cgroup_dir(Path::new("/tmp"), Version::V1));
        assert!(!is_cgroup_dir(Path::new("/tmp"), Version::V2));
    }
}
