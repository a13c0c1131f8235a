/* Structs and constants shared by sock_dye.bpf.c and the agent
 * (packages/agent/src/sock-dye-config.ts decodes them). Fixed-width types only:
 * user space reads these as raw little-endian bytes. */
#ifndef INDIGO_SOCK_DYE_H
#define INDIGO_SOCK_DYE_H

/* dye_config map value (one entry, key 0), written by the agent. */
struct sock_dye_config {
	__u32 default_dye; /* dye for sockets established in the cgroup; 0 = leave them undyed */
	__u32 mark_base;   /* SO_MARK bits kept outside mark_mask */
	__u32 mark_mask;   /* SO_MARK bits that carry the dye */
	__u32 flags;       /* SOCK_DYE_F_* */
};

/* Set the socket mark of dyed sockets to (mark_base & ~mark_mask) | (dye & mark_mask),
 * so that ip rules / nftables can route dyed traffic. Off by default: a mark can
 * collide with marks other software on the node already uses. */
#define SOCK_DYE_F_SET_MARK (1u << 0)

/* sock_dye map value: the dye one socket carries and how it got it. */
struct sock_dye {
	__u32 dye;
	__u32 source; /* SOCK_DYE_SRC_* */
};

#define SOCK_DYE_SRC_NONE 0
#define SOCK_DYE_SRC_CGROUP_DEFAULT 1 /* config.default_dye, given at established */

/* counters map (per-CPU __u64, exact): one slot per sock_ops op, then outcomes. */
#define SOCK_DYE_OP_SLOTS 32 /* BPF_SOCK_OPS_* ops are < 32; larger ones land in CTR_OP_OTHER */
#define SOCK_DYE_CTR_OP_OTHER 32
#define SOCK_DYE_CTR_DYED 33          /* established sockets that carry a dye */
#define SOCK_DYE_CTR_UNDYED 34        /* established sockets left undyed */
#define SOCK_DYE_CTR_STORAGE_FAILED 35 /* sk storage could not be created (ENOMEM) */
#define SOCK_DYE_CTR_MARKED 36        /* SO_MARK set */
#define SOCK_DYE_CTR_MARK_FAILED 37   /* bpf_setsockopt(SO_MARK) refused */
#define SOCK_DYE_CTR_MAX 38

#endif /* INDIGO_SOCK_DYE_H */
