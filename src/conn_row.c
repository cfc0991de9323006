// SPDX-License-Identifier: BSD-2-Clause
/*
 * conn_row.c - one connection as a row of the live table (report.h):
 * what echod counts of it and what the kernel holds for it.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "fault_conn.h"
#include "outq.h"
#include "report.h"
#include "tls.h"

static bool fin_unread(int state)
{
	return state == TCP_CLOSE_WAIT || state == TCP_LAST_ACK ||
	       state == TCP_CLOSING;
}

/*
 * What the kernel holds for c: the queues as ss shows them (SIOCINQ is
 * rcv_nxt - copied_seq, SIOCOUTQ write_seq - snd_una, the same sums
 * inet_diag reports), and TCP_INFO.
 */
void conn_describe(struct conn *c, uint64_t now_ms, struct report_row *row)
{
	struct tcp_info ti;
	socklen_t len = sizeof(row->local);

	memset(row, 0, sizeof(*row));
	row->fd = c->fd;
	/* Admission skips getpeername unless -v; the table needs it. */
	if (c->peer.sa.sa_family == AF_UNSPEC &&
	    getpeername(c->fd, &c->peer.sa, &len) < 0)
		memset(&c->peer, 0, sizeof(c->peer));
	row->peer = c->peer;
	len = sizeof(row->local);
	getsockname(c->fd, &row->local.sa, &len);
	row->age_ms = now_ms - c->born_ms;
	row->messages = c->messages;
	row->bytes_in = c->bytes_in;
	row->bytes_out = c->bytes_out;
	row->pending = outq_bytes(&c->out);
	if (c->flags & CONN_VIA)
		row->via = c->via;
	if (c->flags & CONN_TLS_UP)
		snprintf(row->tls, sizeof(row->tls), "%s/%s",
			 tls_conn_version(c->tls), tls_conn_cipher(c->tls));
	if (c->fault)
		snprintf(row->faults, sizeof(row->faults), "%s",
			 c->fault->names);
	if (ioctl(c->fd, SIOCINQ, &row->recv_q) < 0)
		row->recv_q = -1;
	if (ioctl(c->fd, SIOCOUTQ, &row->send_q) < 0)
		row->send_q = -1;
	len = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
		row->state = ti.tcpi_state;
		/*
		 * A FIN we have not read yet: ss counts its sequence number
		 * in Recv-Q, SIOCINQ does not (tcp_inq subtracts it).
		 */
		if (fin_unread(row->state) && !(c->flags & CONN_PEER_EOF) &&
		    row->recv_q >= 0)
			row->recv_q++;
		row->rtt_us = ti.tcpi_rtt;
		row->retrans = ti.tcpi_total_retrans;
		row->cwnd = ti.tcpi_snd_cwnd;
	}
}
