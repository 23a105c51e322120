package scan

import (
	"regexp"
	"slices"
	"strings"

	"github.com/mcp-mediator/mediator/mediator"
)

// The rules below say in other languages what the English rules of
// text.go and definition.go say: an attacker writes a poisoned description
// in German or Japanese as easily as in English, and the model reads both.
// They cover German, Spanish, French, Portuguese, Italian, Russian,
// Chinese, Japanese and Korean, for the kinds of text a model obeys
// without the user seeing it: overriding instructions, hiding from the
// user, reading sensitive files, sending data to an address, and changing
// how other tools are used.
//
// Go's \b is an ASCII word boundary, so it is never written next to a
// letter that may be accented or not Latin: a rule there would silently
// never match.

// sensitivePath is a file or store an agent's tool must never be told to
// read: keys, cloud and forge credentials, the MCP client's own config.
const sensitivePath = `(~/\.ssh|\bid[_ ](rsa|ed25519|ecdsa)\b|\bssh[_ ](private[_ ])?key|\.ssh/|\bmcp\.json\b|\.aws/credentials|\.env\b|/etc/(passwd|shadow)|\.netrc|\.git-credentials|\.kube/config|\.docker/config\.json|\.config/gh\b|\bhosts\.yml\b|\.npmrc\b|\.pypirc\b|/proc/self/environ|\.bash_history|\.zsh_history|private[_ ]key|\bkeychain\b)`

// alt joins words into an alternation, with a word boundary on each side
// that is an ASCII letter: "lea" must not match inside "clear".
func alt(words ...string) string {
	var b strings.Builder
	b.WriteString("(")
	for i, w := range words {
		if i > 0 {
			b.WriteString("|")
		}
		if asciiLetter(w[0]) {
			b.WriteString(`\b`)
		}
		b.WriteString(w)
		if asciiLetter(w[len(w)-1]) {
			b.WriteString(`\b`)
		}
	}
	b.WriteString(")")
	return b.String()
}

func asciiLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// Words of the languages, as alternations.
var (
	i18nUser = `(benutzer|nutzer|anwender|usuari[oa]|utilisat(eur|rice)|usuário|utilizador|utente|пользовател|用户|用戶|ユーザー|利用者|사용자)`
	i18nTool = `(werkzeug|tool|herramienta|outil|ferramenta|strumento|инструмент|工具|ツール|도구|función|fonction|funktion)`
	// i18nAlways is "always" and its kin: what a shadowing rule imposes.
	i18nAlways = `(immer|stets|jedes mal|siempre|toujours|sempre|всегда|总是|總是|始终|一律|务必|必ず|常に|항상|반드시)`
	// i18nSend is a verb that sends or uploads.
	i18nSend = alt("sende", "senden", "schicke", "schicken", "übermittle", "übermitteln", "übertrage", `lade\S* hoch`,
		"envía", "envia", "enviar", "envíe", "manda", "mandar", "reenvía", "sube", "subir",
		"envoie", "envoyez", "envoyer", "transmets", "transmettez", "transmettre", "téléverse",
		"envie", "encaminhe", "invia", "inviare", "inoltra", "carica",
		`отправ\S*`, "перешли", "загрузи",
		"发送", "發送", "发到", "上传", "上傳", "传到", "提交到", "转发", "送信", "送って", "送る", "アップロード", "転送", "보내", "전송", "업로드")
	// i18nRead is a verb that reads, opens or passes along.
	i18nRead = alt("lies", "lese", "lesen", "öffne", "übergib", "übergeben", `füge\S* (bei|ein|hinzu)`, `hänge\S* an`, "kopiere",
		"lee", "leer", "lea", "incluye", `incl[uú]yel[oa]s?`, "adjunta", "copia", "pasa", "abre",
		"lis", "lisez", "lire", "joins", "joignez", `ouvre[zr]?`,
		"leia", "ler", "inclua", "anexe", "copie", "abra", "leggi", "leggere", "includi", "allega", "apri",
		`прочита\S*`, "прочти", "считай", "скопируй", "открой", "приложи",
		"读取", "讀取", "读", "打开", "附上", "复制", "包含", "読み", "読ん", "開い", "開き", "添付", "含め", "コピー", "읽", "첨부", "포함", "열어")
)

// foreignInstructions are the instruction rules in other languages.
var foreignInstructions = []pattern{
	pat("instruction.override", "model_instruction", mediator.SeverityHigh,
		"ignor|vergiss|missacht|olvid|desobedec|caso omiso|oubli|tiens pas compte|esqueç|desobedeç|dimentic|disobbed|игнор|забудь|не обращай|忽略|无视|無視|忘记|忘記|忽视|忘れ|무시|잊",
		`(ignorier\S*|vergiss|missachte\S*|ignora|ignore[zr]?|olvida|desobedece|haz caso omiso( de)?|oublie[zr]?|ne tiens pas compte( de)?|esqueça|desobedeça|dimentica|disobbedisci|игнорируй\S*|проигнорируй\S*|забудь|не обращай внимания на)[^.\n]{0,30}(anweisung|instruktion|vorgabe|regeln|instruccion|indicacion|reglas|consigne|instructions|règles|instruç|regras|istruzion|regole|инструкци|указани|правил|`+i18nUser+`)`+
			`|(忽略|无视|無視|忘记|忘記|忽视)[^。\n]{0,15}(指令|指示|说明|說明|规则|規則|提示|命令|要求)`+
			`|(指示|命令|ルール|指令|規則)[^。\n]{0,10}(無視|忘れ)`+
			`|(지시|명령|규칙|지침)[^.\n]{0,10}(무시|잊)`),
	pat("instruction.secrecy", "model_instruction", mediator.SeverityHigh,
		// Every branch names the user, but one that says "without telling him".
		"benutzer|nutzer|anwender|usuari|utilisat|usuário|utilizador|utente|пользовател|用户|用戶|ユーザー|利用者|사용자|decírselo|decirselo",
		// German: a negation, the user and a verb of telling, in either order.
		`(nicht|niemals|keinesfalls|auf keinen fall|kein wort)[^.\n]{0,40}`+i18nUser+`[^.\n]{0,25}(sagen|mitteil|erwähn|erzähl|informier|verrat|zeig|benachrichtig)`+
			`|(sag|teil|erwähn|erzähl|informier|verrat|zeig)\S*[^.\n]{0,30}(nicht|niemals|keinesfalls|auf keinen fall)[^.\n]{0,30}`+i18nUser+
			`|ohne[^.\n]{0,15}`+i18nUser+`[^.\n]{0,15}zu (informieren|fragen|benachrichtigen|sagen)`+
			// Spanish, French, Portuguese, Italian.
			`|\bno\s+(le |les |se lo |lo )?(digas|diga|menciones|mencione|informes|informe|avises|avise|cuentes|cuente|reveles|revele|muestres|muestre)[^.\n]{0,25}`+i18nUser+
			`|\bsin\s+dec[ií]rselo|\bsin\s+(decirle|informar|avisar|notificar|consultar|preguntar)[^.\n]{0,10}`+i18nUser+
			`|\bne\s+(le |lui |leur |l'en |en )?(dites|dis|mentionnez|mentionne|signalez|signale|informez|révélez|montrez|parlez|prévenez)[^.\n]{0,30}(pas|rien|jamais)[^.\n]{0,25}`+i18nUser+
			`|\bsans\s+(en\s+)?(informer|prévenir|avertir|le dire à|demander à|le signaler à)[^.\n]{0,10}`+i18nUser+
			`|não\s+(diga|conte|mencione|informe|avise|revele|mostre)[^.\n]{0,25}`+i18nUser+
			`|\bsem\s+(informar|avisar|contar|dizer|consultar)[^.\n]{0,10}`+i18nUser+
			`|\bnon\s+(dire|dirlo|dirglielo|menzionare|informare|rivelare|mostrare|avvisare)[^.\n]{0,25}`+i18nUser+
			`|\bsenza\s+(informare|avvisare|dirlo|dirglielo|chiedere)[^.\n]{0,10}`+i18nUser+
			// Russian.
			`|не\s+(говори|сообщай|рассказывай|показывай|упоминай|говорите|сообщайте|уведомляй)[^.\n]{0,25}`+i18nUser+
			`|без ведома\s+`+i18nUser+`|скрой\S*[^.\n]{0,25}от\s+`+i18nUser+
			// Chinese, Japanese, Korean.
			`|(不要|别|切勿|不得|请勿|請勿|不可)[^。\n]{0,6}(告诉|告訴|告知|通知|提醒|透露|让|讓)[^。\n]{0,4}(用户|用戶)|(对|向|對)(用户|用戶)(保密|隐瞒|隱瞞)|不让(用户|用戶)知道`+
			`|(ユーザー|利用者)[^。\n]{0,6}(伝え|言わ|知らせ|教え|見せ|通知し|報告し)[^。\n]{0,4}(ないで|ない|るな)|(ユーザー|利用者)に(は)?(秘密|内緒)`+
			`|사용자에게[^.\n]{0,10}(알리지|말하지|보여주지|알려주지)`),
	pat("instruction.sensitive_file", "model_instruction", mediator.SeverityHigh,
		".ssh|ssh|id_|id |mcp.json|.aws|.env|/etc/|.netrc|.git-cred|.kube|.docker|.config/gh|hosts.yml|.npmrc|.pypirc|environ|history|private|keychain",
		i18nRead+`[^\n]{0,60}`+sensitivePath+`|`+sensitivePath+`[^\n。]{0,25}`+i18nRead),
	pat("instruction.coercion", "model_instruction", mediator.SeverityMedium,
		"bevor|antes de|avant d|prima di|перед|之前|前に|전에",
		// "Before using this tool, read / call / send ..."
		`(bevor du (dieses|das|ein) (`+i18nTool+`)|antes de (usar|utilizar|llamar|invocar) (esta|este|la|el)|avant d'(utiliser|appeler) (cet|cette|l')|antes de (usar|utilizar|chamar) (esta|este|a|o)|prima di (usare|utilizzare|chiamare) (questo|questa|lo|il)|перед (использованием|вызовом) (этого|любого)|(使用|调用|調用)(此|这个|這個|本)(工具|函数)(之前|前)|この(ツール|関数)を(使う|使用する|呼び出す)前に|이 도구를 (사용|호출)하기 전에)[^\n]{0,80}`+i18nRead),
}

// foreignSendToURL matches text telling the model to send something to an
// address, in the other languages; an SOV language puts the verb after
// the address.
var foreignSendToURL = regexp.MustCompile(`(?i)` + i18nSend + i18nSentence + `{0,120}(https?://[^\s"'<>)]+)|(https?://[^\s"'<>)]+)[^.\n。]{0,20}` + i18nSend)

// i18nSentence is a character of one sentence: a full stop counts only
// before a space or the end (".env" and "example.com" do not end one).
const i18nSentence = `(?:[^.\n。]|\.\S)`

// sendToMailbox matches text telling the model to send something to a
// mail address, in any of the languages; it counts when what is sent is
// sensitive (sensitiveObject), since "send feedback to help@vendor.io"
// is ordinary.
var sendToMailbox = regexp.MustCompile(`(?i)(\b(send|e-?mail|mail|forward|cc|bcc)(s|ed)?\b|` + i18nSend[1:len(i18nSend)-1] + `)` + i18nSentence + `{0,160}?\b([\w.+-]+@([\w-]+\.)+[a-z]{2,})\b`)

// sensitiveObject is what must not be mailed out: contacts, histories,
// conversations, credentials and key files, in the languages above.
var sensitiveObject = regexp.MustCompile(`(?i)contacts|contact list|address book|contatos|contactos|kontakte|adressbuch|contatti|rubrica|carnet d'adresses|контакт|联系人|聯絡人|連絡先|연락처|` +
	`\bhistory\b|histórico|historial|historique|verlauf|cronologia|истори|历史|歷史|履歴|기록|` +
	`conversation|conversa|conversación|gespräch|unterhaltung|conversazione|переписк|разговор|对话|對話|会話|대화|` +
	`passwor|senha|contraseña|mot de passe|пароль|密码|密碼|パスワード|비밀번호|credential|zugangsdaten|credenciais|credenciales|identifiants|credenziali|` +
	`api[ _-]?key|\btokens?\b|\.env\b|\.ssh|id_rsa|private key|clave privada|chave privada|privater schlüssel|clé privée|私钥|秘密鍵|개인 키`)

// exampleMailbox is a mail address that reaches no one.
var exampleMailbox = regexp.MustCompile(`(?i)@([\w-]+\.)*(example\.(com|org|net)|localhost|invalid|test)$`)

// exampleHost is an address that sends nothing anywhere.
var exampleHost = regexp.MustCompile(`(?i)^https?://([\w-]+\.)*(example\.(com|org|net)|localhost|127\.0\.0\.1|\[::1\])([:/]|$)`)

// foreignShadow matches "when you use a tool, always ..." in the other
// languages, with the condition before the tool or, in Japanese and
// Korean, after it.
var foreignShadow = regexp.MustCompile(`(?i)(` + alt("wenn", "sobald", "bevor", "cuando", "siempre que", "antes de", "lorsque", "quand", "chaque fois que", "avant d", "quando", "sempre que", "ogni volta che", "prima di", "когда", "перед") +
	`|每当|每當|当你|當你|在(使用|调用|調用))[^\n]{0,80}?` + i18nTool + `[^\n]{0,80}?` + i18nAlways +
	`|(ツール|関数)[^。\n]{0,20}(の際|ときは|時は|場合は|たびに)[^。\n]{0,40}(必ず|常に|いつも)` +
	`|도구[^.\n]{0,20}(때|마다)[^.\n]{0,40}(항상|반드시)`)

// alwaysAnchor holds the words of i18nAlways, one of which every
// foreignShadow match contains.
var alwaysAnchor = pattern{anchors: strings.Split(strings.Trim(i18nAlways, "()"), "|")}

// otherServer names another server or its tools.
var otherServer = regexp.MustCompile(`(?i)(eines anderen|anderer|de otros?|d'un autre|d'autres|de outros?|di (un )?altr[oi]|другого|других|其他|其它|他の|다른)[^\n]{0,20}(server|servidor|serveur|сервер|服务器|伺服器|サーバー|서버|` + i18nTool[1:len(i18nTool)-1] + `)`)

// toolName is an identifier in snake case, the way tools are named.
var toolName = regexp.MustCompile(`[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+`)

// scanForeign applies the send-to-address and shadowing rules in other
// languages to one string. A shadowing sentence counts when it names
// another server or a tool that is not one of this server's own: "when
// the tool finds nothing, it always returns an empty list" is no attack.
func scanForeign(path, s string, ctx Context, out []mediator.Finding) []mediator.Finding {
	if !strings.Contains(s, "://") {
		// Neither rule's expression is cheap; each needs an address or
		// an "always" to match at all.
	} else if m := foreignSendToURL.FindStringSubmatch(s); m != nil {
		url := m[2]
		if url == "" {
			url = m[3]
		}
		if !exampleHost.MatchString(url) {
			out = append(out, finding("exfil.send_to_url", "exfiltration", mediator.SeverityHigh, path, m[0]))
		}
	}
	if strings.Contains(s, "@") {
		if m := sendToMailbox.FindStringSubmatch(s); m != nil && !exampleMailbox.MatchString(m[len(m)-2]) && sensitiveObject.MatchString(m[0]) {
			out = append(out, finding("exfil.send_to_mailbox", "exfiltration", mediator.SeverityHigh, path, m[0]))
		}
	}
	if !alwaysAnchor.anchored(strings.ToLower(s)) {
		return out
	}
	if m := foreignShadow.FindString(s); m != "" && (otherServer.MatchString(s) || namesOther(m, ctx)) {
		out = append(out, finding("shadow.when_other_tool", "shadowing", mediator.SeverityHigh, path, m))
	}
	return out
}

// namesOther reports whether s names a tool, in snake case, that is not
// one of ctx's own.
func namesOther(s string, ctx Context) bool {
	for _, n := range toolName.FindAllString(s, -1) {
		if !slices.ContainsFunc(ctx.Own, func(o string) bool { return strings.EqualFold(o, n) }) {
			return true
		}
	}
	return false
}
