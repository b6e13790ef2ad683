package bench

// Word lists for the corpus generator. They only need to look like
// ordinary mail text in each language and charset; the sentences they
// make are nonsense.

var wordsEN = []string{
	"the", "meeting", "report", "project", "we", "should", "review", "budget",
	"next", "week", "please", "find", "attached", "update", "on", "our",
	"quarterly", "numbers", "team", "agreed", "to", "move", "deadline",
	"customer", "feedback", "about", "release", "and", "invoice", "for",
	"march", "thanks", "again", "for", "your", "help", "with", "this",
	"server", "migration", "is", "scheduled", "friday", "morning", "after",
	"backup", "has", "finished", "let", "me", "know", "if", "you", "have",
	"questions", "regarding", "contract", "draft", "travel", "plans",
	"conference", "in", "berlin", "lunch", "tomorrow", "office", "closed",
	"holiday", "new", "colleague", "starts", "monday", "welcome", "aboard",
	"password", "reset", "required", "ticket", "resolved", "minutes", "of",
	"call", "agenda", "items", "open", "issues", "summary", "status",
}

var wordsDE = []string{
	"die", "Besprechung", "ist", "für", "nächste", "Woche", "geplant",
	"bitte", "prüfen", "Sie", "den", "Entwurf", "im", "Anhang", "wir",
	"müssen", "über", "das", "Budget", "sprechen", "Grüße", "aus", "München",
	"die", "Übersicht", "der", "Kosten", "für", "März", "liegt", "vor",
	"schöne", "Feiertage", "und", "vielen", "Dank", "für", "Ihre", "Geduld",
	"Straße", "Größe", "Lösung", "Änderung", "Bestätigung", "Rückmeldung",
	"Zuständigkeit", "Kündigung", "Vertrag", "Rechnung", "Überweisung",
	"fällig", "täglich", "gemäß", "außerdem", "natürlich", "Frühstück",
	"Sitzung", "verschoben", "auf", "Donnerstag", "Kollegen", "Abteilung",
}

var wordsFR = []string{
	"la", "réunion", "est", "prévue", "pour", "la", "semaine", "prochaine",
	"veuillez", "trouver", "ci-joint", "le", "rapport", "trimestriel",
	"nous", "avons", "reçu", "votre", "facture", "merci", "beaucoup",
	"à", "bientôt", "cordialement", "déjà", "été", "très", "où", "côté",
	"équipe", "problème", "résolu", "après", "mise", "à", "jour", "système",
	"réponse", "élève", "façon", "garçon", "naïve", "fenêtre", "hôtel",
	"château", "forêt", "théâtre", "bibliothèque", "numéro", "dossier",
	"rendez-vous", "lundi", "matin", "congés", "été", "prévu", "salle",
}

// wordsJA are Japanese phrases, joined without spaces.
var wordsJA = []string{
	"お世話になっております", "会議は来週", "に予定されています", "資料を添付します",
	"ご確認ください", "よろしくお願いします", "見積書", "について", "請求書",
	"東京", "大阪", "本日", "明日", "打ち合わせ", "の件", "承知しました",
	"ありがとうございます", "担当者", "変更", "予定", "報告", "内容", "確認",
	"メール", "サーバー", "移行", "完了しました", "問題", "解決", "新しい",
	"プロジェクト", "進捗", "共有", "いたします", "締め切り", "延長", "検討",
	"会社", "部長", "課長", "様", "出張", "名古屋", "福岡", "返信",
}

var firstNames = []string{
	"Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi",
	"Jürgen", "Zoë", "Renée", "François", "Søren", "Ångström", "Małgorzata",
	"山田", "佐藤", "Björn", "Chloé", "Günther", "Inès", "José", "Mónica",
}

var lastNames = []string{
	"Smith", "Jones", "Müller", "Schäfer", "Dubois", "Lefèvre", "García",
	"太郎", "花子", "Nowak", "Johansson", "Brown", "Weiß", "Núñez", "O'Neil",
}

var domains = []string{
	"example.net", "example.com", "mail.example.org", "lists.example.net",
	"corp.example", "xn--bro-hoa.example", "example.co.jp", "newsletter.example.com",
}

var attachNames = []string{
	"report-2024-Q1", "invoice_10442", "Übersicht März", "contrat signé",
	"見積書", "photo", "scan0001", "presentation-final-v3", "minutes",
	"Kündigung", "résumé", "budget 2025",
}
