// Interop check: two apps using the published ilp-plugin-http 1.6.1 (with ilp-packet and ilp-protocol-ildcp)
// pay each other through a ledgerwire node over ILP-over-HTTP. Run by run.sh; prints one JSON line.
'use strict'
const crypto = require('crypto')
const PluginHttp = require('ilp-plugin-http')
const IlpPacket = require('ilp-packet')
const ILDCP = require('ilp-protocol-ildcp')

const [node, senderPort, receiverPort] = process.argv.slice(2)
const tokens = {
  senderIn: 'sender-to-node-token-01', senderOut: 'node-to-sender-token-01',
  receiverIn: 'receiver-to-node-token1', receiverOut: 'node-to-receiver-token1'
}

async function main () {
  const sender = new PluginHttp({
    incoming: { port: Number(senderPort), staticToken: tokens.senderOut },
    outgoing: { url: `http://${node}/accounts/sender/ilp`, staticToken: tokens.senderIn }
  })
  const receiver = new PluginHttp({
    incoming: { port: Number(receiverPort), staticToken: tokens.receiverOut },
    outgoing: { url: `http://${node}/accounts/receiver/ilp`, staticToken: tokens.receiverIn }
  })
  let received = 0
  // The receiver releases the fulfillment the sender put in the data (a test convention, not STREAM).
  receiver.registerDataHandler(async data => {
    const prepare = IlpPacket.deserializeIlpPrepare(data)
    received += Number(prepare.amount)
    return IlpPacket.serializeIlpFulfill({ fulfillment: prepare.data.slice(0, 32), data: Buffer.from('thanks') })
  })
  sender.registerDataHandler(async () => IlpPacket.serializeIlpReject({
    code: 'F02', triggeredBy: '', message: 'sender takes no packets', data: Buffer.alloc(0)
  }))
  await sender.connect()
  await receiver.connect()

  const senderInfo = await ILDCP.fetch(data => sender.sendData(data))
  const receiverInfo = await ILDCP.fetch(data => receiver.sendData(data))

  let fulfilled = 0
  let sent = 0
  for (let i = 0; i < 50; i++) {
    const fulfillment = crypto.randomBytes(32)
    const amount = 100 + i
    const reply = await sender.sendData(IlpPacket.serializeIlpPrepare({
      amount: String(amount),
      executionCondition: crypto.createHash('sha256').update(fulfillment).digest(),
      expiresAt: new Date(Date.now() + 30000),
      destination: receiverInfo.clientAddress + '.invoice',
      data: fulfillment
    }))
    sent += amount
    const parsed = IlpPacket.deserializeIlpPacket(reply)
    if (parsed.typeString === 'ilp_fulfill' && parsed.data.fulfillment.equals(fulfillment)) fulfilled += amount
  }
  const unroutable = IlpPacket.deserializeIlpPacket(await sender.sendData(IlpPacket.serializeIlpPrepare({
    amount: '1',
    executionCondition: crypto.randomBytes(32),
    expiresAt: new Date(Date.now() + 30000),
    destination: 'test.nowhere.x',
    data: Buffer.alloc(0)
  })))
  await sender.disconnect()
  await receiver.disconnect()
  console.log(JSON.stringify({
    sender_address: senderInfo.clientAddress,
    receiver_address: receiverInfo.clientAddress,
    asset: `${senderInfo.assetCode}/${senderInfo.assetScale}`,
    sent, fulfilled, received,
    unroutable: { code: unroutable.data.code, triggered_by: unroutable.data.triggeredBy, message: unroutable.data.message }
  }))
}

main().catch(e => { console.error(e); process.exit(1) })
