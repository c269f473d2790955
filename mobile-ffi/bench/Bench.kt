// The SDK's figures from Kotlin on the JVM, printed as `name value` lines for the benchmark
// (bench/src/sdk.rs), which runs the same calls from Rust beside them.
// Usage: BenchKt STORE_DIR KEY_HEX PHOTO_FILE DATE
package homevisit.bench

import java.io.File
import uniffi.homevisit.*

/** The median of [runs] timed calls, after as many untimed ones to let the JIT settle. */
fun medianNanos(runs: Int, f: () -> Unit): Long {
    repeat(runs) { f() }
    val times = LongArray(runs) {
        val start = System.nanoTime()
        f()
        System.nanoTime() - start
    }
    times.sort()
    return times[runs / 2]
}

fun main(args: Array<String>) {
    val (dir, keyHex, photoFile, date) = args
    val key = keyHex.chunked(2).map { it.toInt(16).toByte() }.toByteArray()
    Phone.open(dir, key).use { phone ->
        println("due_entries ${phone.due(date).size}")
        println("due_ns ${medianNanos(101) { phone.due(date) }}")
        println("children_ns ${medianNanos(101) { phone.children() }}")
    }
    println("call_ns ${medianNanos(10001) { sdkVersion() }}")
    val photo = File(photoFile).readBytes()
    println("photo_bytes ${processPhoto(photo).jpeg.size}")
    println("photo_ns ${medianNanos(5) { processPhoto(photo) }}")
}
