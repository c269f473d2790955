# Sourced: finds what the Kotlin side needs and sets KOTLINC and KOTLIN_CLASSPATH (JNA and
# kotlinx-coroutines), from the workspace root.
# KOTLINC may be given; otherwise npm's kotlin-compiler, global or under target/tools (installed
# there when missing). npm's package links only kotlinc-js into PATH, so kotlinc is called by
# its path. Calls `need MESSAGE` (defined by the caller) when something cannot be had.
KOTLIN_VERSION=2.4.20
command -v java >/dev/null || need "java is not installed (apt-get install default-jre-headless)"
jna=${JNA_JAR:-/usr/share/java/jna.jar}
[ -f "$jna" ] || need "JNA is not installed (apt-get install libjna-java)"
KOTLINC=${KOTLINC:-}
if [ -z "$KOTLINC" ]; then
  for candidate in "$(npm root -g 2>/dev/null)/kotlin-compiler/bin/kotlinc" \
    "target/tools/kotlin/node_modules/kotlin-compiler/bin/kotlinc"; do
    [ -x "$candidate" ] && KOTLINC=$candidate && break
  done
fi
if [ -z "$KOTLINC" ]; then
  npm install --prefix target/tools/kotlin --no-audit --no-fund -q "kotlin-compiler@$KOTLIN_VERSION" >&2 ||
    need "kotlinc could not be installed from npm"
  KOTLINC=target/tools/kotlin/node_modules/kotlin-compiler/bin/kotlinc
fi
coroutines=$(dirname "$KOTLINC")/../lib/kotlinx-coroutines-core-jvm.jar
[ -f "$coroutines" ] || need "kotlinx-coroutines is not beside $KOTLINC"
KOTLIN_CLASSPATH=$jna:$coroutines
