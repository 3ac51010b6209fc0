/**
 * The address every test, benchmark and soak run talks to: IPv4 loopback.
 *
 * @module
 */

/** IPv4 loopback, as an IP literal (a host name would be resolved for every packet). */
export const HOST = "127.0.0.1";
