// The SDK's errors, one by one: each is a Kotlin exception with a clear message, never a crashed
// JVM, and the phone goes on working after it.
// Usage: UnitSuiteKt SERVER_URL CA_PEM_FILE DIRECTOR PASSWORD
package homevisit.tests

import java.io.File
import java.time.LocalDate
import java.util.UUID
import uniffi.homevisit.*

/** A PNG header that claims 60000 x 60000 pixels: an image bomb, a few dozen bytes long. */
fun imageBomb(): ByteArray {
    fun chunk(type: String, data: ByteArray): ByteArray {
        val crc = java.util.zip.CRC32()
        crc.update(type.toByteArray())
        crc.update(data)
        val len = java.nio.ByteBuffer.allocate(4).putInt(data.size).array()
        val sum = java.nio.ByteBuffer.allocate(4).putInt(crc.value.toInt()).array()
        return len + type.toByteArray() + data + sum
    }
    val ihdr = java.nio.ByteBuffer.allocate(13).putInt(60000).putInt(60000)
        .put(8).put(2).put(0).put(0).put(0).array()
    val idat = java.io.ByteArrayOutputStream().also { out ->
        java.util.zip.DeflaterOutputStream(out).use { it.write(ByteArray(1024)) }
    }.toByteArray()
    val signature = byteArrayOf(0x89.toByte(), 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A)
    return signature + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", ByteArray(0))
}

fun main(args: Array<String>) {
    val (url, caFile, director, password) = args
    val ca = File(caFile).readText()
    val t = Checks("kotlin unit")
    val today = todayInChina()

    val dir = tempDir("hv-unit")
    val key = randomKey()
    Phone.open(dir, key).use { t.check("a new phone opens empty", it.status().files == 0u) }
    val wrong = t.throws<HomevisitException.WrongKey>("a wrong key is WrongKey") { Phone.open(dir, randomKey()) }
    t.check("the WrongKey message says what happened", wrong?.message?.contains("key") == true) { "${wrong?.message}" }
    t.throws<HomevisitException.Invalid>("a key of 16 bytes is Invalid") { Phone.open(tempDir("hv-short"), ByteArray(16)) }

    Phone.open(dir, key).use { phone ->
        t.check("the right key still opens after a wrong one", phone.status().username == null)
        t.throws<HomevisitException.NotLoggedIn>("sync before login is NotLoggedIn") { phone.sync() }
        t.throws<HomevisitException.Server>("a wrong password is the server's 401") {
            phone.login(url, ca, director, password + "x", "kotlin unit")
        }?.let { t.check("the refusal carries its status and code", it.status == 401.toUShort() && it.code == "invalid_credentials") { "$it" } }
        t.throws<HomevisitException.Invalid>("a CA that is not PEM is Invalid") {
            phone.login(url, "not a certificate", director, password, "kotlin unit")
        }
        val account = phone.login(url, ca, director, password, "kotlin unit")
        t.check("login says who and where", account.role == "director" && account.scope.isNotEmpty()) { "$account" }

        t.throws<HomevisitException.NoSuchChild>("an unknown child is NoSuchChild") { phone.child(UUID.randomUUID().toString()) }
        t.throws<HomevisitException.NoSuchChild>("recording for an unknown child is NoSuchChild") {
            phone.recordContact(UUID.randomUUID().toString(), today, "phone", "")
        }
        t.throws<HomevisitException.Invalid>("a child id that is not a UUID is Invalid") { phone.child("12") }
        t.throws<HomevisitException.Invalid>("a date that is not YYYY-MM-DD is Invalid") { phone.due("28/11/2026") }
        val village = account.scope.first()
        t.throws<HomevisitException.OutOfScope>("a village outside the account is OutOfScope") {
            phone.addChild(NewChild("外村", "male", "2016-01-01", null, "220303109200", "", ""))
        }
        t.throws<HomevisitException.Invalid>("an unknown sex is Invalid") {
            phone.addChild(NewChild("某", "x", "2016-01-01", null, village, "", ""))
        }
        val id = phone.addChild(NewChild("单元测试", "female", "2016-03-01", null, village, "一组", ""))
        t.check("a child is added offline", phone.child(id).name == "单元测试")

        val corrupt = byteArrayOf(0xFF.toByte(), 0xD8.toByte(), 0xFF.toByte(), 0xE0.toByte(), 1, 2, 3)
        val refused = t.throws<HomevisitException.Photo>("a corrupt image is Photo") {
            phone.recordHomeVisit(id, today, Findings("", "", "", ""), "", listOf(cameraPhoto(), corrupt))
        }
        t.check("the refusal names the photo", refused?.index == 1u) { "$refused" }
        t.check("a refused visit records nothing and queues no photo",
            phone.child(id).records.isEmpty() && phone.status().photosWaiting == 0u)
        t.throws<HomevisitException.Photo>("an image bomb is Photo") {
            phone.recordHomeVisit(id, today, Findings("", "", "", ""), "", listOf(imageBomb()))
        }
        t.throws<HomevisitException.Invalid>("an unknown danger kind is Invalid") {
            phone.reportDanger(id, today, listOf("ghosts"), "", listOf())
        }
        t.throws<HomevisitException.Invalid>("a danger report without a kind is Invalid") {
            phone.reportDanger(id, today, listOf(), "", listOf())
        }
        t.throws<HomevisitException.Invalid>("an unknown channel is Invalid") { phone.recordContact(id, today, "pigeon", "") }
        t.throws<HomevisitException.NoSuchAlert>("an unknown alert is NoSuchAlert") { phone.acknowledgeAlert("nope", "") }
        t.throws<HomevisitException.Invalid>("rules that do not parse are Invalid") { phone.setRules("[[not rules") }
        val grade = t.throws<HomevisitException.Invalid>("a certificate grade out of range is Invalid") {
            phone.addPart(id, "facts", """{"effective":"$today","fact":"disability_certificate","disability":"physical","grade":5}""")
        }
        t.check("the refusal names the field", grade?.reason?.contains("facts/grade") == true) { "$grade" }
        t.throws<HomevisitException.Invalid>("an unknown part is Invalid") { phone.addPart(id, "wishes", "{}") }
        t.check("a refused part stores nothing", phone.child(id).partsJson.contains("disability_certificate").not())
        val plan = phone.addPart(id, "plans",
            """{"needs":"学业辅导","measures":"志愿者每周辅导","responsible":"村儿童主任","made_on":"$today","review_on":"2099-01-01"}""")
        phone.correctPart(id, "plans", plan,
            """{"needs":"学业辅导","measures":"志愿者每周两次辅导","responsible":"村儿童主任","made_on":"$today","review_on":"2099-06-01"}""")
        t.check("a plan and its review are kept as two versions",
            phone.child(id).partsJson.contains("每周两次") && phone.child(id).partsJson.contains("志愿者每周辅导"))
        phone.recordContact(id, today, "phone", "电话联系")
        t.check("after every refusal the phone still records", phone.child(id).records.size == 1)

        val found = phone.addChild(NewChild("新发现", "male", "2018-02-01", null, village, "二组", "",
            categories = listOf("left_behind")))
        val inAMonth = LocalDate.parse(today).plusDays(35).toString()
        fun visitEvery(on: String) = phone.due(on).filter { it.childId == found && it.kind == "home_visit" }.map { it.every }
        t.check("a child added without a guardianship level is due monthly", visitEvery(inAMonth).size == 1) { "${visitEvery(inAMonth)}" }
        val level = t.throws<HomevisitException.Invalid>("an unknown guardianship level is Invalid") {
            phone.assess(found, "guardianship", "excellent", true, today)
        }
        t.check("the refusal names what was wrong", level?.reason?.contains("excellent") == true) { "$level" }
        t.throws<HomevisitException.Invalid>("an assessment dated in the future is Invalid") {
            phone.assess(found, "guardianship", "good", true, "2099-01-01")
        }
        t.check("a refused assessment stores nothing", phone.child(found).guardianship == null)
        phone.assess(found, "guardianship", "good", true, today)
        t.check("once assessed good the child is no longer due within the month",
            phone.child(found).guardianship == "good" && visitEvery(inAMonth).isEmpty()) { "${visitEvery(inAMonth)}" }

        phone.wipe()
        t.throws<HomevisitException.Wiped>("a call after wipe is Wiped") { phone.children() }
        t.throws<HomevisitException.Wiped>("a sync after wipe is Wiped") { phone.sync() }
        t.check("the wiped store is gone from disk", File(dir).listFiles()!!.none { it.name.startsWith("store") })
    }

    val broken = object : HttpTransport {
        override fun send(request: TransportRequest): TransportResponse = throw IllegalStateException("no route to host")
    }
    Phone.openWithTransport(tempDir("hv-broken"), randomKey(), broken).use { phone ->
        val e = t.throws<HomevisitException.Network>("an app transport that throws is Network, not a crash") {
            phone.login(url, ca, director, password, "kotlin unit")
        }
        t.check("the Network error carries the transport's reason", e?.reason?.contains("no route to host") == true) { "$e" }
    }
    t.check("sdkVersion answers", sdkVersion().isNotEmpty())
    t.finish()
}
