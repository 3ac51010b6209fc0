import { deepEqual } from "node:assert/strict";
import { parseFibTrie, parseIfInet6 } from "./addresses.ts";

/** A host with loopback, two Ethernet interfaces (one with two addresses) and a bridge. */
const FIB_TRIE = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.0.0.0/8 2 0 2
        +-- 10.0.2.0/24 2 0 2
           +-- 10.0.2.0/28 2 0 2
              |-- 10.0.2.0
                 /24 link UNICAST
              |-- 10.0.2.15
                 /32 host LOCAL
           |-- 10.0.2.255
              /32 link BROADCAST
        +-- 10.20.30.0/24 2 0 1
           |-- 10.20.30.0
              /24 link UNICAST
           |-- 10.20.30.4
              /32 host LOCAL
           |-- 10.20.30.5
              /32 host LOCAL
           |-- 10.20.30.255
              /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.168.122.0/24 2 0 2
        |-- 192.168.122.0
           /24 link UNICAST
        |-- 192.168.122.1
           /32 host LOCAL
        |-- 192.168.122.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.0.0.0/8 2 0 2
        +-- 10.0.2.0/24 2 0 2
           +-- 10.0.2.0/28 2 0 2
              |-- 10.0.2.0
                 /24 link UNICAST
              |-- 10.0.2.15
                 /32 host LOCAL
           |-- 10.0.2.255
              /32 link BROADCAST
        +-- 10.20.30.0/24 2 0 1
           |-- 10.20.30.0
              /24 link UNICAST
           |-- 10.20.30.4
              /32 host LOCAL
           |-- 10.20.30.5
              /32 host LOCAL
           |-- 10.20.30.255
              /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.168.122.0/24 2 0 2
        |-- 192.168.122.0
           /24 link UNICAST
        |-- 192.168.122.1
           /32 host LOCAL
        |-- 192.168.122.255
           /32 link BROADCAST
`;

/** A host whose only interface also has a route line before its LOCAL line. */
const FIB_TRIE_MIXED = `Main:
  +-- 0.0.0.0/0 2 0 2
     |-- 0.0.0.0
        /0 universe UNICAST
     |-- 172.17.0.1
        /32 link UNICAST
        /32 host LOCAL
     |-- 172.17.255.255
        /32 link BROADCAST
`;

/** /proc/net/if_inet6: loopback, global, ULA, link-local and site-local addresses. */
const IF_INET6 = [
  "00000000000000000000000000000001 01 80 10 80       lo",
  "20010db8000000000000000000000001 02 40 00 80     eth0",
  "fe800000000000005054fffffe123456 02 40 20 80     eth0",
  "fd000000000000000000000000000002 03 40 00 82     eth1",
  "fe80000000000000fc00fffffe000001 03 40 20 80     eth1",
  "20010db8000100020003000400050006 03 40 00 80     eth1",
  "20010db8000000000001000000000000 04 30 00 00   bridge",
  "fec00000000000000000000000000001 05 40 40 80     sit0",
  "",
].join("\n");

Deno.test("parseFibTrie lists the local IPv4 addresses of every interface once", () => {
  deepEqual(parseFibTrie(FIB_TRIE), [
    "10.0.2.15",
    "10.20.30.4",
    "10.20.30.5",
    "127.0.0.1",
    "192.168.122.1",
  ]);
});

Deno.test("parseFibTrie ignores network, broadcast and /8 host routes", () => {
  deepEqual(parseFibTrie(FIB_TRIE_MIXED), ["172.17.0.1"]);
  deepEqual(parseFibTrie(""), []);
  deepEqual(parseFibTrie("Main:\n  +-- 0.0.0.0/0 1 0 0\n     |-- 0.0.0.0\n"), []);
});

Deno.test("parseIfInet6 lists global and loopback IPv6 addresses, skipping link-local", () => {
  deepEqual(parseIfInet6(IF_INET6), [
    "::1",
    "2001:db8::1",
    "fd00::2",
    "2001:db8:1:2:3:4:5:6",
    "2001:db8:0:0:1::",
  ]);
});

Deno.test("parseIfInet6 compresses the longest run of zero groups, the first on a tie", () => {
  const line = (hex: string) => `${hex} 02 40 00 80 eth0\n`;
  deepEqual(parseIfInet6(line("20010db8000000010000000000000001")), ["2001:db8:0:1::1"]);
  deepEqual(parseIfInet6(line("20010000000000010000000000010001")), ["2001::1:0:0:1:1"]);
  deepEqual(parseIfInet6(line("20010000000000010000000000000001")), ["2001:0:0:1::1"]);
  deepEqual(parseIfInet6(line("20010db8000100000001000000010001")), ["2001:db8:1:0:1:0:1:1"]);
  deepEqual(parseIfInet6(line("00000000000000000000000000000000")), ["::"]);
  deepEqual(parseIfInet6("garbage\n12 34\n"), []);
});
