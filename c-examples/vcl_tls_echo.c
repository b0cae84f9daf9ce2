/* vcl_tls_echo: a TLS (or DTLS) echo server and client over VCL. The server loads a PEM
 * certificate and key, registers them with vppcom_add_cert_key_pair and puts the pair on its
 * listener (VPPCOM_ATTR_SET_CKPAIR); VPP's TLS does the handshake and encryption, the app sees
 * plaintext. Blocking sessions, one client at a time. Uses only vppcom.h.
 *   vcl_tls_echo [-p tls|dtls] server CERT KEY PORT [MAX_SESSIONS]   (0: serve forever)
 *   vcl_tls_echo [-p tls|dtls] client CERT KEY ADDR PORT ROUNDS SIZE
 * (The client registers the pair too: VPP offers it if the server asks for a certificate.)
 * With dtls every write is one datagram and every read returns one: each round's SIZE bytes go
 * out as one datagram and must come back whole (keep SIZE within a DTLS record, ~16 KB). VPP
 * v26.06 does not tell a DTLS server that its client closed (README), so a DTLS client ends
 * with a BYE datagram and the server closes that session when it reads one. */
#include <vcl/vppcom.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
die (const char *what, int rv)
{
  fprintf (stderr, "vcl_tls_echo: %s: %d (%s)\n", what, rv, vppcom_retval_str (rv));
  return 1;
}

static char *
slurp (const char *path, uint32_t *len)
{
  FILE *f = fopen (path, "rb");
  char *buf;
  long n;

  if (!f)
    return NULL;
  fseek (f, 0, SEEK_END);
  n = ftell (f);
  rewind (f);
  buf = n > 0 ? malloc (n) : NULL;
  if (buf && fread (buf, 1, n, f) != (size_t) n)
    {
      free (buf);
      buf = NULL;
    }
  fclose (f);
  *len = (uint32_t) n;
  return buf;
}

/* Register CERT/KEY with VPP; the pair's index, or <0. */
static int
add_pair (const char *cert, const char *key)
{
  vppcom_cert_key_pair_t ck;
  int rv;

  memset (&ck, 0, sizeof (ck));
  ck.cert = slurp (cert, &ck.cert_len);
  ck.key = slurp (key, &ck.key_len);
  if (!ck.cert || !ck.key)
    {
      fprintf (stderr, "vcl_tls_echo: cannot read %s or %s\n", cert, key);
      return VPPCOM_EINVAL;
    }
  rv = vppcom_add_cert_key_pair (&ck);
  free (ck.cert);
  free (ck.key);
  return rv;
}

static uint8_t proto = VPPCOM_PROTO_TLS;
static const char bye[] = "vcl_tls_echo bye";

static int
tls_session (uint32_t ckpair)
{
  uint32_t len = sizeof (ckpair);
  int sh = vppcom_session_create (proto, 0), rv;

  if (sh < 0)
    return sh;
  rv = vppcom_session_attr (sh, VPPCOM_ATTR_SET_CKPAIR, &ckpair, &len);
  return rv ? rv : sh;
}

static void
endpoint (vppcom_endpt_t *e, uint8_t *ip, int port)
{
  memset (e, 0, sizeof (*e));
  e->is_ip4 = 1;
  e->ip = ip;
  e->port = htons (port);
}

static int
server (int ckpair, int port, int max)
{
  uint8_t any[4] = { 0 }, peer[16];
  static char buf[65536];
  unsigned long long bytes = 0;
  vppcom_endpt_t e;
  int ls = tls_session (ckpair), rv, done = 0;

  if (ls < 0)
    return die ("listener", ls);
  endpoint (&e, any, port);
  if ((rv = vppcom_session_bind (ls, &e)) || (rv = vppcom_session_listen (ls, 10)))
    return die ("bind/listen", rv);
  printf ("vcl_tls_echo: listening on port %d\n", port);
  fflush (stdout);
  while (!max || done < max)
    {
      int s, n;
      memset (&e, 0, sizeof (e));
      e.ip = peer;
      if ((s = vppcom_session_accept (ls, &e, 0)) < 0)
	return die ("accept", s);
      while ((n = vppcom_session_read (s, buf, sizeof (buf))) > 0)
	{
	  int off = 0, w;
	  if (proto == VPPCOM_PROTO_DTLS && n == sizeof (bye) && !memcmp (buf, bye, n))
	    break;
	  for (; off < n; off += w)
	    if ((w = vppcom_session_write (s, buf + off, n - off)) < 0)
	      return die ("write", w);
	  bytes += n;
	}
      vppcom_session_close (s);
      done++;
    }
  printf ("vcl_tls_echo: %d sessions served, %llu bytes echoed\n", done, bytes);
  vppcom_session_close (ls);
  return 0;
}

static int
client (int ckpair, const char *addr, int port, int rounds, int size)
{
  uint8_t ip[4];
  char *out = malloc (size), *in = malloc (size);
  vppcom_endpt_t e;
  int sh = tls_session (ckpair), rv, r, i;

  if (sh < 0)
    return die ("session", sh);
  if (!out || !in || inet_pton (AF_INET, addr, ip) != 1)
    return die ("address or memory", VPPCOM_EINVAL);
  endpoint (&e, ip, port);
  if ((rv = vppcom_session_connect (sh, &e)))
    return die ("connect (TLS handshake)", rv);
  for (r = 0; r < rounds; r++)
    {
      int got = 0, off = 0, n;
      for (i = 0; i < size; i++)
	out[i] = (char) (i * 7 + r);
      /* write and read interleaved: a size larger than the fifos still flows */
      while (got < size)
	{
	  if (off < size)
	    {
	      n = vppcom_session_write (sh, out + off, size - off);
	      if (n < 0 && n != VPPCOM_EAGAIN)
		return die ("write", n);
	      off += n > 0 ? n : 0;
	    }
	  n = vppcom_session_read (sh, in + got, size - got);
	  if (n <= 0)
	    return die ("read", n);
	  got += n;
	}
      if (memcmp (in, out, size))
	return die ("echo differs", VPPCOM_EINVAL);
    }
  printf ("vcl_tls_echo: %d echoes of %d bytes ok\n", rounds, size);
  if (proto == VPPCOM_PROTO_DTLS && (rv = vppcom_session_write (sh, (void *) bye, sizeof (bye))) < 0)
    return die ("write bye", rv);
  vppcom_session_close (sh);
  free (out);
  free (in);
  return 0;
}

int
main (int argc, char **argv)
{
  int rv, ck;

  if (argc > 2 && !strcmp (argv[1], "-p"))
    {
      if (!strcmp (argv[2], "dtls"))
	proto = VPPCOM_PROTO_DTLS;
      else if (strcmp (argv[2], "tls"))
	argc = 0; /* usage */
      argv += 2;
      argc = argc ? argc - 2 : 0;
    }
  if (argc < 5 || (strcmp (argv[1], "server") && (strcmp (argv[1], "client") || argc < 8)))
    {
      fprintf (stderr, "usage: vcl_tls_echo [-p tls|dtls] server CERT KEY PORT [MAX_SESSIONS]\n"
		       "       vcl_tls_echo [-p tls|dtls] client CERT KEY ADDR PORT ROUNDS SIZE\n");
      return 2;
    }
  if ((rv = vppcom_app_create ("vcl_tls_echo")))
    return die ("app create", rv);
  if ((ck = add_pair (argv[2], argv[3])) < 0)
    return die ("add cert/key pair", ck);
  if (!strcmp (argv[1], "server"))
    rv = server (ck, atoi (argv[4]), argc > 5 ? atoi (argv[5]) : 0);
  else
    rv = client (ck, argv[4], atoi (argv[5]), atoi (argv[6]), atoi (argv[7]));
  vppcom_app_destroy ();
  return rv;
}
