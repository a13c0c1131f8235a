/* Kernel socket fields read as plain BTF loads instead of helper calls: on this kind of CPU (SRSO "safe
 * RET" mitigation) every helper call pays a call and a return thunk, and the send/recv hooks run per
 * request. sk is a trusted BTF pointer (tp_btf arguments). */
#ifndef INDIGO_SOCK_BPF_H
#define INDIGO_SOCK_BPF_H

/* = bpf_get_socket_cookie(sk): the kernel keeps the cookie in the socket once it was generated (the first
 * event of a socket, or anyone's SO_COOKIE); only then is the helper needed. */
static __always_inline __u64 sock_cookie(struct sock *sk)
{
	__u64 cookie = sk->__sk_common.skc_cookie.counter;

	return cookie ? cookie : bpf_get_socket_cookie(sk);
}

#endif /* INDIGO_SOCK_BPF_H */
