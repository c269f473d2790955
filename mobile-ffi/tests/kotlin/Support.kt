// What the Kotlin suites share: a check counter, the server's own HTTP API for checking what
// arrived, and an HttpTransport on java.net.http, as an app with its own stack writes one.
package homevisit.tests

import java.io.ByteArrayInputStream
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.security.KeyStore
import java.security.cert.CertificateFactory
import java.time.Duration
import javax.net.ssl.SSLContext
import javax.net.ssl.TrustManagerFactory
import uniffi.homevisit.*

class Checks(private val suite: String) {
    var passed = 0
    var failed = 0

    fun check(name: String, ok: Boolean, detail: () -> String = { "" }) {
        if (ok) {
            passed++
            println("ok   $suite: $name")
        } else {
            failed++
            println("FAIL $suite: $name ${detail()}")
        }
    }

    /** Runs [body], which must throw [E]; checks the message is not empty. */
    inline fun <reified E : Throwable> throws(name: String, body: () -> Unit): E? {
        try {
            body()
        } catch (e: Throwable) {
            if (e is E) {
                check(name, !e.message.isNullOrBlank()) { "an exception without a message: $e" }
                return e
            }
            check(name, false) { "threw ${e::class.qualifiedName}: ${e.message}" }
            return null
        }
        check(name, false) { "nothing was thrown" }
        return null
    }

    fun finish(): Nothing {
        println("$suite: $passed passed, $failed failed")
        kotlin.system.exitProcess(if (failed == 0 && passed > 0) 0 else 1)
    }
}

/** An HTTP client trusting only the server's certificate, as a county's app would pin it. */
fun pinnedClient(caPem: String): HttpClient {
    val cert = CertificateFactory.getInstance("X.509")
        .generateCertificate(ByteArrayInputStream(caPem.toByteArray()))
    val store = KeyStore.getInstance(KeyStore.getDefaultType())
    store.load(null, null)
    store.setCertificateEntry("homevisit", cert)
    val trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm())
    trust.init(store)
    val tls = SSLContext.getInstance("TLS")
    tls.init(null, trust.trustManagers, null)
    return HttpClient.newBuilder()
        .sslContext(tls)
        .connectTimeout(Duration.ofSeconds(30))
        .build()
}

/** The app's own stack behind the SDK: java.net.http instead of the built-in rustls. */
class JavaHttpTransport(caPem: String) : HttpTransport {
    private val client = pinnedClient(caPem)
    var requests = 0

    // Headers the JDK sets itself and refuses to be given.
    private val restricted = setOf("host", "content-length", "connection", "expect", "upgrade")

    override fun send(request: TransportRequest): TransportResponse {
        requests++
        val builder = HttpRequest.newBuilder(URI.create(request.url)).timeout(Duration.ofSeconds(120))
        for (h in request.headers) {
            if (h.name.lowercase() !in restricted) builder.header(h.name, h.value)
        }
        builder.method(request.method, HttpRequest.BodyPublishers.ofByteArray(request.body))
        val response = try {
            client.send(builder.build(), HttpResponse.BodyHandlers.ofByteArray())
        } catch (e: java.io.IOException) {
            throw HomevisitException.Network("java.net.http: ${e.message}")
        }
        val headers = response.headers().map().flatMap { (name, values) ->
            values.map { Header(name, it) }
        }
        return TransportResponse(response.statusCode().toUShort(), headers, response.body())
    }
}

/** The server's HTTP API, as the township supervisor's web console calls it. */
class Api(private val base: String, caPem: String) {
    private val client = pinnedClient(caPem)
    private var token = ""

    fun login(user: String, password: String) {
        val body = """{"username":"$user","password":"$password","device_id":"${java.util.UUID.randomUUID()}","device_name":"console"}"""
        val answer = post("/api/v1/auth/login", body)
        token = Regex("\"access_token\"\\s*:\\s*\"([^\"]+)\"").find(answer.second)?.groupValues?.get(1)
            ?: error("no token in ${answer.first}")
    }

    private fun post(path: String, json: String): Pair<Int, String> {
        val request = HttpRequest.newBuilder(URI.create(base + path))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json))
            .build()
        val r = client.send(request, HttpResponse.BodyHandlers.ofString())
        return r.statusCode() to r.body()
    }

    fun get(path: String): Pair<Int, ByteArray> {
        val request = HttpRequest.newBuilder(URI.create(base + path))
            .header("Authorization", "Bearer $token")
            .GET()
            .build()
        val r = client.send(request, HttpResponse.BodyHandlers.ofByteArray())
        return r.statusCode() to r.body()
    }

    fun getText(path: String): Pair<Int, String> = get(path).let { it.first to String(it.second) }
}

/** A photo as a phone camera gives it: a PNG or JPEG of a few hundred pixels. */
fun cameraPhoto(width: Int = 800, height: Int = 600): ByteArray {
    val image = java.awt.image.BufferedImage(width, height, java.awt.image.BufferedImage.TYPE_INT_RGB)
    for (x in 0 until width) for (y in 0 until height) image.setRGB(x, y, ((x % 200) shl 16) or ((y % 200) shl 8) or 90)
    val out = java.io.ByteArrayOutputStream()
    javax.imageio.ImageIO.write(image, "jpg", out)
    return out.toByteArray()
}

fun randomKey(): ByteArray = ByteArray(32).also { java.security.SecureRandom().nextBytes(it) }

fun tempDir(prefix: String): String = java.nio.file.Files.createTempDirectory(prefix).toString()

fun todayInChina(): String = java.time.LocalDate.now(java.time.ZoneId.of("Asia/Shanghai")).toString()

/** What of [canaries] (as UTF-8) or a JPEG's first bytes is found in clear under [dir]. */
fun inClear(dir: String, canaries: List<String>): List<String> {
    val needles = canaries.map { it to it.toByteArray() } +
        ("JPEG" to byteArrayOf(0xFF.toByte(), 0xD8.toByte(), 0xFF.toByte()))
    val files = java.io.File(dir).walkTopDown().filter { it.isFile }.toList()
    if (files.isEmpty()) return listOf("no file under $dir")
    return files.flatMap { file ->
        val bytes = file.readBytes()
        needles.filter { (_, needle) ->
            (0..bytes.size - needle.size).any { i -> needle.indices.all { bytes[i + it] == needle[it] } }
        }.map { (what, _) -> "$what in ${file.name}" }
    }
}
