#!/usr/bin/env bash
# Upstream's own Node.js binding on our C ABI: copies `bindings/node` of upstream's repository
# (riyaneel/Tachyon, tag v0.5.1 by default) into a temporary directory at run time (nothing of
# it is kept in the repository), installs its npm dependencies exactly as its package-lock.json
# pins them (from the npm registry, install scripts off), compiles its N-API addon
# (`src/native/tachyon_node.cpp`) against OUR tachyon.h and libtachyon.so (target/capi/, from
# `./just capi`) instead of its C++ core, checks that upstream's TypeScript loader loads that
# addon on our library, runs upstream's own mocha suite (test/bus.spec.ts, test/rpc.spec.ts,
# whose workers run in separate processes through tsx), then one check of ours through the
# same binding (a SIGKILLed peer surfaces as upstream's PeerDeadError).
#
#   crates/capi/scripts/upstream-node.sh SOURCE [mocha args...]
#
# SOURCE, or $TACHYON_UPSTREAM (then every argument goes to mocha): a checkout of upstream's
# repository (its work tree taken as it is), its `bindings/node` directory, or a git directory
# (bare or not) or URL, checked out at $TACHYON_UPSTREAM_REF (default v0.5.1). Needs node >= 20
# and npm, the Node headers (node_api.h: $NODE_INCLUDE, default <node's prefix>/include/node)
# and a C++ compiler ($CAPI_CXX; default g++, else zig's clang++ from the venv). Any failure,
# or an addon that does not load our library, fails the script.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
venv="$root/.venv"
capi="$root/target/capi"
say() { echo "upstream-node: $*" >&2; }
die() { say "$*"; exit 1; }

if [[ -n ${TACHYON_UPSTREAM:-} ]]; then
  source=$TACHYON_UPSTREAM
else
  source=${1:-}
  [[ $# -gt 0 ]] && shift
fi
[[ -n $source ]] || die "usage: $0 SOURCE [mocha args] (SOURCE or \$TACHYON_UPSTREAM: upstream's checkout, its bindings/node, a git directory or a git URL)"
ref=${TACHYON_UPSTREAM_REF:-v0.5.1}
[[ -f "$capi/lib/libtachyon.so" && -f "$capi/include/tachyon.h" ]] ||
  die "$capi has no libtachyon.so or tachyon.h; run ./just capi first"

command -v node >/dev/null && command -v npm >/dev/null || die "needs node and npm"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "needs node >= 20 (upstream's engines), found $(node --version)"
node_include=${NODE_INCLUDE:-$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node}
[[ -f "$node_include/node_api.h" ]] || die "no node_api.h in $node_include (set NODE_INCLUDE)"
cxx=${CAPI_CXX:-$(command -v g++ || echo "$venv/bin/zig-c++")}

work=$(mktemp -d "${TMPDIR:-/tmp}/tachyon-capi-node.XXXXXX")
trap 'rm -rf "$work"' EXIT
node_dir="$work/node"

# The binding's files, without any node_modules or build of the source.
if [[ -f $source/package.json && -d $source/src/native ]]; then
  from="$source"
elif [[ -f $source/bindings/node/package.json ]]; then
  from="$source/bindings/node"
else
  from=""
fi
if [[ -n $from ]]; then
  say "copying $from"
  mkdir -p "$node_dir"
  (cd "$from" && tar -cf - --exclude=./node_modules --exclude=./build --exclude=./dist .) | tar -xf - -C "$node_dir"
else
  # A git directory or URL: upstream's tree at $ref.
  say "cloning $source at $ref"
  git clone --quiet --depth 1 --branch "$ref" "$source" "$work/repo" 2>/dev/null ||
    git clone --quiet "$source" "$work/repo"
  git -C "$work/repo" -c advice.detachedHead=false checkout --quiet "$ref"
  say "upstream at $(git -C "$work/repo" rev-parse HEAD) ($ref)"
  mv "$work/repo/bindings/node" "$node_dir"
fi
for needed in package.json package-lock.json .mocharc.json src/native/tachyon_node.cpp \
  src/ts/index.ts test/bus.spec.ts test/rpc.spec.ts test/worker.ts test/rpc_worker.ts; do
  [[ -f "$node_dir/$needed" ]] || die "the binding lacks $needed"
done
version=$(node -p "require('$node_dir/package.json').version")
[[ $version == 0.5.1 ]] || say "warning: the binding is version $version, our ABI is 0.5.1's"

# Its dependencies as its lock file pins them (mocha, tsx and its esbuild, node-addon-api, and
# the rest of its dev tools). Install scripts off: upstream's own `install` is `cmake-js
# compile`, which builds its C++23 core; the addon is built below instead.
say "npm ci (upstream's package-lock.json, install scripts off)"
(cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
napi_include=$(cd "$node_dir" && node -p "require('node-addon-api').include" | tr -d '"')

# The addon from tachyon_node.cpp alone, against our header, linked to our libtachyon.so (where
# upstream's CMakeLists.txt compiles its core's five .cpp files into it). Flags as upstream's
# CMakeLists.txt: C++23, NAPI_VERSION=8, C++ exceptions on.
say "compiling src/native/tachyon_node.cpp with $cxx against $capi"
mkdir -p "$node_dir/build/Release"
addon="$node_dir/build/Release/tachyon_node.node"
"$cxx" -std=c++23 -O2 -shared -fPIC -w -DNAPI_VERSION=8 -DBUILDING_NODE_EXTENSION \
  -I"$capi/include" -I"$napi_include" -I"$node_include" \
  "$node_dir/src/native/tachyon_node.cpp" \
  -L"$capi/lib" -ltachyon -Wl,-rpath,"$capi/lib" \
  -o "$addon"

# No tachyon_* function of its own: every one comes from libtachyon.
defined=$(nm -D --defined-only "$addon" | awk '$3 ~ /^tachyon_/ {print $3}')
[[ -z $defined ]] || die "the addon defines tachyon functions itself: $defined"
imported=$(nm -D --undefined-only "$addon" | awk '$2 ~ /^tachyon_/ {print $2}' | sort -u)
say "the addon imports $(wc -w <<<"$imported") tachyon_* functions, defines none"
ours=$(readlink -f "$capi/lib/libtachyon.so")
resolved=$(ldd "$addon" | awk '$1 ~ /^libtachyon/ {print $3}')
[[ -n $resolved && $(readlink -f "$resolved") == "$ours" ]] ||
  die "the addon resolves libtachyon to '${resolved}', expected $ours"

# Upstream's TypeScript entry point (through tsx, as its tests load it) must load this addon,
# and the process must map our libtachyon.so and no other.
(cd "$node_dir" && node --import tsx/esm --input-type=module - "$addon" "$ours") <<'JS'
import { readFileSync, realpathSync } from 'node:fs';
const [addon, ours] = process.argv.slice(2);
const tachyon = await import(process.cwd() + '/src/ts/index.ts');
if (typeof tachyon.Bus?.listen !== 'function' || typeof tachyon.RpcBus?.connect !== 'function')
	throw new Error('upstream index.ts lacks Bus/RpcBus');
const maps = readFileSync('/proc/self/maps', 'utf8').split('\n');
const mapped = (name) => new Set(maps.filter((l) => l.includes(name)).map((l) => l.trim().split(/\s+/).pop()));
const libs = mapped('libtachyon'), addons = mapped('tachyon_node');
if (libs.size !== 1 || !libs.has(ours)) throw new Error(`libtachyon mapped from ${[...libs]}, expected ${ours}`);
if (addons.size !== 1 || !addons.has(realpathSync(addon))) throw new Error(`addon mapped from ${[...addons]}`);
console.error(`upstream-node: src/ts/index.ts loaded ${addon}, on ${ours}`);
JS

# Upstream's suite, as `npm test` runs it (mocha with its .mocharc.json). Its workers are
# separate processes (tsx) that load the same addon through the same index.ts.
say "running upstream's mocha suite (test/bus.spec.ts, test/rpc.spec.ts)"
cd "$node_dir"
node_modules/.bin/mocha "$@"

# One more check of our own, through upstream's binding and its TypeScript classes: a peer
# SIGKILLed mid-stream. Upstream's core never notices (its consumer blocks forever, as its
# error.ts says); ours ends the blocking receive with NULL and reports
# TACHYON_STATE_FATAL_ERROR, which upstream's Bus.recv and RpcBus.wait turn into PeerDeadError.
# SPSC: a producer sends 1,000 messages (retrying while the 64 KiB ring is full) and kills
# itself; the consumer gets all 1,000, then PeerDeadError. RPC: a callee answers one call,
# takes a second and kills itself; the caller gets the first reply, then PeerDeadError from
# its wait for the second.
cat >"$node_dir/peer_death.ts" <<'TS'
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, PeerDeadError, RpcBus } from './src/ts/index.ts';

const N = 1000;
const nap = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const retry = <T>(open: () => T): T => {
	for (let i = 0; ; i++) {
		try {
			return open();
		} catch (err) {
			if (i >= 250) throw err;
			nap(20);
		}
	}
};
const role = process.env['PEER_DEATH_ROLE'];
const path = process.env['PEER_DEATH_PATH']!;

if (role === 'producer') {
	const bus = retry(() => Bus.connect(path));
	for (let i = 0; i < N; i++) {
		const payload = Buffer.alloc(8);
		payload.writeUInt32LE(i, 0);
		for (;;) {
			try {
				bus.send(payload, 7);
				break;
			} catch (err) {
				// send does not wait: a full ring is ERR_TACHYON_FULL, to be retried.
				if ((err as { code?: string }).code !== 'ERR_TACHYON_FULL') throw err;
				nap(1);
			}
		}
	}
	process.kill(process.pid, 'SIGKILL');
} else if (role === 'callee') {
	const bus = RpcBus.listen(path, 1 << 16, 1 << 16);
	const first = bus.serve()!;
	const cid = first.correlationId;
	const echo = Buffer.from(first.data());
	first.commit();
	bus.reply(cid, echo, 2);
	const second = bus.serve()!;
	assert.ok(second);
	process.kill(process.pid, 'SIGKILL');
} else {
	const child = (childRole: string, childPath: string) => {
		const proc = spawn(process.execPath, ['--import', 'tsx/esm', 'peer_death.ts'], {
			env: { ...process.env, PEER_DEATH_ROLE: childRole, PEER_DEATH_PATH: childPath },
			stdio: ['ignore', 'inherit', 'inherit'],
		});
		return new Promise<string | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)));
	};
	const expectPeerDead = (what: string, step: () => unknown) => {
		const started = Date.now();
		for (;;) {
			try {
				if (step() !== null) assert.fail(`${what}: a message after the peer died`);
			} catch (err) {
				if (err instanceof PeerDeadError) return (Date.now() - started) / 1000;
				throw err;
			}
			assert.ok(Date.now() - started < 10_000, `${what}: no PeerDeadError within 10 s`);
		}
	};

	const busPath = join(tmpdir(), `tachyon-node-death-${randomUUID()}.sock`);
	const producer = child('producer', busPath);
	const bus = Bus.listen(busPath, 1 << 16);
	for (let i = 0; i < N; i++) {
		const { data, typeId } = bus.recv();
		assert.equal(typeId, 7);
		assert.equal(data.readUInt32LE(0), i);
	}
	const busWaited = expectPeerDead('Bus.recv', () => bus.recv());
	assert.equal(await producer, 'SIGKILL');
	bus.close();
	console.error(`upstream-node: ${N} messages, then the killed producer ended Bus.recv with PeerDeadError after ${busWaited.toFixed(2)} s`);

	const rpcPath = join(tmpdir(), `tachyon-node-death-rpc-${randomUUID()}.sock`);
	const callee = child('callee', rpcPath);
	const rpc = retry(() => RpcBus.connect(rpcPath));
	const cid1 = rpc.call(Buffer.from('first'), 1);
	let reply = null;
	while (reply === null) reply = rpc.wait(cid1);
	assert.equal(reply.msgType, 2);
	assert.equal(reply.data().toString(), 'first');
	reply.commit();
	const cid2 = rpc.call(Buffer.from('second'), 1);
	assert.equal(cid2, cid1 + 1n);
	const rpcWaited = expectPeerDead('RpcBus.wait', () => rpc.wait(cid2));
	assert.equal(await callee, 'SIGKILL');
	rpc.close();
	console.error(`upstream-node: one reply, then the killed callee ended RpcBus.wait with PeerDeadError after ${rpcWaited.toFixed(2)} s`);
}
TS
node --import tsx/esm peer_death.ts 2>&1 | grep -v 'called on the main thread' >&2
